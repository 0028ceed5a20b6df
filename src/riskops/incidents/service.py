"""Incidents and the plans they run: declaration, activation, the state machine, steps, roles, messages."""

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from sqlmodel import Session, col, or_, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.crisis import Severity
from riskops.db import get_row
from riskops.errors import Conflict, InvalidTransition, NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.incidents import scheduled
from riskops.incidents.escalations import service as escalations
from riskops.incidents.models import (
    UNFINISHED_STEP,
    UNSENT_MESSAGE,
    Closure,
    Incident,
    IncidentCounts,
    IncidentCreate,
    IncidentMessage,
    IncidentPublic,
    IncidentRisk,
    IncidentRole,
    IncidentState,
    IncidentStep,
    IncidentSummaryPublic,
    Measures,
    MessagePublic,
    MessageStatus,
    PostIncidentSummary,
    RiskRef,
    RolePublic,
    StepPublic,
    StepStatus,
    TimelineEntry,
)
from riskops.notices import service as scheduler
from riskops.pagination import decode_id_cursor, id_page
from riskops.playbooks import service as playbooks
from riskops.playbooks.models import PlaybookVersion
from riskops.risks import service as risks
from riskops.risks.models import ControlCreate, Risk, reference

# ---- the state machine ----

Action = Literal["acknowledge", "mitigate", "resolve", "close", "reopen"]

TRANSITIONS: dict[IncidentState, dict[str, IncidentState]] = {
    IncidentState.declared: {"acknowledge": IncidentState.acknowledged},
    IncidentState.acknowledged: {"mitigate": IncidentState.mitigated},
    IncidentState.mitigated: {"resolve": IncidentState.resolved},
    IncidentState.resolved: {"close": IncidentState.closed, "reopen": IncidentState.acknowledged},
    IncidentState.closed: {},
}

# ---- lookup ----

_REFERENCE = re.compile(r"^(?:INC-)?0*(\d{1,12})$", re.IGNORECASE)


def parse_incident_ref(ref: str) -> int:
    match = _REFERENCE.match(ref.strip())
    if match is None:
        raise NotFound(f"'{ref}' is not an incident id or reference (like 7 or INC-0007).")
    return int(match.group(1))


def get_incident(session: Session, ref: str, *, for_update: bool = False) -> Incident:
    return get_row(session, Incident, parse_incident_ref(ref), "Incident", with_for_update=for_update)


def get_for_change(session: Session, ref: str) -> Incident:
    """The incident, locked for this transaction; a closed incident takes no more changes."""
    incident = get_incident(session, ref, for_update=True)
    if incident.state == IncidentState.closed:
        raise InvalidTransition(f"{incident.reference} is closed; it takes no more changes.", allowed=[])
    return incident


# ---- declaring and activating ----


def declare(session: Session, data: IncidentCreate, who: Principal, settings: Settings) -> Incident:
    """Declare an incident, activating its playbook (if any) in the same transaction."""
    now = utcnow()
    if data.detected_at is not None and data.detected_at > now:
        raise Unprocessable(
            "The detection time cannot be in the future.",
            errors=[field_error(("body", "detected_at"), "in the future")],
        )
    linked = _resolve_risks(session, data.risk_ids)
    try:
        plan = playbooks.get_version(session, data.playbook, data.playbook_version) if data.playbook else None
    except NotFound as exc:  # a reference in the body: the body is wrong, like a risk id that does not exist
        raise Unprocessable(exc.detail, errors=[field_error(("body", "playbook"), "no such playbook")]) from exc
    if plan is not None and plan.retired_at is not None:
        raise Conflict(
            f"Playbook '{plan.slug}' version {plan.version} is retired and cannot be activated.",
            errors=[field_error(("body", "playbook_version"), "retired")],
        )
    spec = plan.parsed() if plan else None
    severity = data.severity or (spec.severity if spec else None)
    title = data.title or (spec.title if spec else None)
    if title is None or severity is None:
        missing = [name for name, value in (("title", title), ("severity", severity)) if value is None]
        raise Unprocessable(
            f"{' and '.join(missing).capitalize()} needed when no playbook gives one.",
            errors=[field_error(("body", name), "required without a playbook") for name in missing],
        )
    incident = Incident(
        title=title, description=data.description, severity=severity, is_exercise=data.exercise,
        declared_at=now, declared_by=who.name,
        detected_at=data.detected_at or now,  # Moment: already in UTC
    )  # fmt: skip
    session.add(incident)
    session.flush()
    kind = "exercise" if data.exercise else "incident"
    text = f"{severity} {kind} declared: {incident.title}"
    if incident.detected_at < now:
        text += f" (detected {incident.detected_at:%Y-%m-%d %H:%M} UTC)"
    _log(session, incident, who, "declared", text, severity=severity, detected_at=incident.detected_at.isoformat())
    for risk in linked:
        session.add(IncidentRisk(incident_id=incident.id, risk_id=risk.id))
        if not data.exercise:  # a drill is not the risk happening
            risks.mark_materialised(session, risk, f"{incident.reference}: {incident.title}", who, settings)
        _log(session, incident, who, "risk.linked", f"Linked to {risk.reference} {risk.title}", risk=risk.reference)
    obligations = _instantiate(session, incident, plan, who) if plan is not None else []
    session.flush()
    wanted = spec.escalation_policy if spec else None
    policy = escalations.resolve(session, wanted)
    if wanted is not None and policy.name != wanted:
        _log(session, incident, who, "note", f"Escalation policy '{wanted}' does not exist; using '{policy.name}'.")
    scheduled.plan_on_declare(session, incident, policy, obligations, settings)
    events.emit(session, "incident.declared", "incident", incident.reference, _event(incident, who))
    if plan is not None:
        events.emit(session, "playbook.activated", "incident", incident.reference, _event(incident, who))
    session.flush()
    return incident


def _resolve_risks(session: Session, refs: list[RiskRef]) -> list[Risk]:
    found, errors = {}, []
    for i, ref in enumerate(refs):
        try:
            risk = risks.get_risk(session, risks.parse_risk_ref(str(ref)))
        except NotFound as exc:
            errors.append(field_error(("body", "risk_ids", i), exc.detail))
            continue
        found[risk.id] = risk
    if errors:
        raise Unprocessable("Some linked risks do not exist; nothing was declared.", errors=errors)
    return list(found.values())


def _instantiate(
    session: Session, incident: Incident, plan: PlaybookVersion, who: Principal
) -> list[IncidentStep | IncidentMessage]:
    """Lay out the plan with absolute deadlines, each counted from the declaration or the detection as the
    playbook says; the RTO and the MTPD always from the declaration."""
    spec = plan.parsed()
    start = {"declaration": incident.declared_at, "detection": incident.detected_at}
    impact = spec.business_impact
    incident.playbook_slug, incident.playbook_version = plan.slug, plan.version
    incident.rto_minutes, incident.mtpd_minutes = impact.rto_minutes, impact.mtpd_minutes
    incident.breach_at = incident.declared_at + timedelta(minutes=impact.rto_minutes)
    incident.mtpd_at = incident.declared_at + timedelta(minutes=impact.mtpd_minutes)
    for role in spec.roles:
        session.add(
            IncidentRole(
                incident_id=incident.id, key=role.id, title=role.title, instructions=role.instructions,
                required=role.required,
            )
        )  # fmt: skip
    obligations: list[IncidentStep | IncidentMessage] = [
        IncidentStep(
            incident_id=incident.id, key=step.id, position=i, title=step.title,
            instructions=step.instructions, role=step.role, depends_on=step.depends_on,
            due_at=start[step.due_from] + timedelta(minutes=step.due_minutes), required=not step.optional,
        )
        for i, step in enumerate(spec.steps)
    ]  # fmt: skip
    obligations += [
        IncidentMessage(
            incident_id=incident.id, key=message.id, position=i, audience=message.audience,
            title=message.title, role=message.role, channel=message.channel, body=render(message.template, incident),
            due_at=start[message.due_from] + timedelta(minutes=message.due_minutes), required=not message.optional,
        )
        for i, message in enumerate(spec.communications)
    ]  # fmt: skip
    session.add_all(obligations)
    session.add(incident)
    _log(
        session, incident, who, "playbook.activated",
        f"Playbook '{plan.slug}' v{plan.version} activated: {len(spec.steps)} steps, "
        f"{len(spec.communications)} communications, recovery due by {incident.breach_at.isoformat()}",
        playbook=plan.slug, version=plan.version,
    )  # fmt: skip
    return obligations


_PLACEHOLDER = re.compile(r"\{(incident_title|incident_ref|declared_at|detected_at)\}")


def render(template: str, incident: Incident) -> str:
    values = {
        "incident_title": incident.title,
        "incident_ref": incident.reference,
        "declared_at": incident.declared_at.strftime("%Y-%m-%d %H:%M UTC"),
        "detected_at": incident.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


# ---- moving the incident ----


def transition(
    session: Session, incident: Incident, action: Action, who: Principal, settings: Settings,
    *, note: str | None = None, closure: Closure | None = None,
) -> Incident:  # fmt: skip
    allowed = TRANSITIONS[incident.state]
    if action not in allowed:
        raise InvalidTransition(
            f"{incident.reference} is {incident.state}; it cannot {action}. "
            f"Allowed: {', '.join(allowed) or 'nothing (closed)'}.",
            allowed=sorted(allowed),
        )
    now = utcnow()
    if action == "close":
        if closure is None:
            raise Unprocessable(
                "Closing needs a post-incident summary.", errors=[field_error(("body", "summary"), "required")]
            )
        _refuse_open_obligations(session, incident)
        _close(session, incident, closure.summary, who, settings)
    old, incident.state = incident.state, allowed[action]
    _reschedule(session, incident, action, settings)
    stamp = {
        "acknowledge": "acknowledged_at",
        "mitigate": "mitigated_at",
        "resolve": "resolved_at",
        "close": "closed_at",
    }
    if action in stamp:
        setattr(incident, stamp[action], now)
    else:  # reopened: no longer mitigated or resolved; the next resolution is the one measured
        incident.mitigated_at = incident.resolved_at = None
    if action == "acknowledge":
        incident.acknowledged_by, incident.acknowledged_automatically = who.name, who.automatic
    incident.version += 1
    session.add(incident)
    how = " (automatic)" if who.automatic else ""
    text = f"State {old} → {incident.state}{how}" + (f": {note}" if note else "")
    moved = {"from": str(old), "to": str(incident.state), "automatic": who.automatic}
    _log(session, incident, who, "state.changed", text, **moved)
    change = {**moved, "action": action, "note": note}
    events.emit(session, "incident.state_changed", "incident", incident.reference, _event(incident, who, **change))
    if action == "acknowledge":
        events.emit(session, "incident.acknowledged", "incident", incident.reference, _event(incident, who, note=note))
    session.flush()
    return incident


def _reschedule(session: Session, incident: Incident, action: Action, settings: Settings) -> None:
    """Acknowledging stops escalation; resolving stops the RTO and MTPD watch, while the steps and messages still
    owed keep their reminders; reopening watches the RTO and MTPD again; closing stops everything."""
    if action == "acknowledge":
        scheduled.cancel_escalation(session, incident)
    elif action == "resolve":
        scheduled.cancel_deadlines(session, incident)
    elif action == "close":
        scheduled.cancel_all(session, incident)
    elif action == "reopen":
        spec = (
            playbooks.get_version(session, incident.playbook_slug, incident.playbook_version).parsed()
            if incident.playbook_slug
            else None
        )
        policy = escalations.resolve(session, spec.escalation_policy if spec else None)
        scheduler.plan(session, scheduled.deadline_notices(incident, policy, settings))


def _refuse_open_obligations(session: Session, incident: Incident) -> None:
    """An incident closes only once every required step is done or skipped and every required message sent."""
    steps = session.exec(
        select(IncidentStep.key, IncidentStep.status)
        .where(
            IncidentStep.incident_id == incident.id, col(IncidentStep.required),
            col(IncidentStep.status).in_(UNFINISHED_STEP),
        )
        .order_by(col(IncidentStep.position))
    ).all()  # fmt: skip
    messages = session.exec(
        select(IncidentMessage.key)
        .where(
            IncidentMessage.incident_id == incident.id, col(IncidentMessage.required),
            col(IncidentMessage.status).in_(UNSENT_MESSAGE),
        )
        .order_by(col(IncidentMessage.position))
    ).all()  # fmt: skip
    if not steps and not messages:
        return
    errors = [
        field_error(("steps", key), f"{status}: a required step is done or skipped first") for key, status in steps
    ]
    errors += [field_error(("communications", key), "unsent: a required message is sent first") for key in messages]
    raise Conflict(
        f"{incident.reference} cannot close while it owes {len(steps)} required step(s) and {len(messages)} "
        "required communication(s): finish or skip the steps and send the messages first.",
        errors=errors, pending_steps=[key for key, _ in steps], unsent_communications=list(messages),
    )  # fmt: skip


def _event(incident: Incident, who: Principal, **extra: object) -> dict[str, object]:
    return scheduled.event_data(incident, actor=who.name, **extra)


def _close(
    session: Session, incident: Incident, summary: PostIncidentSummary, who: Principal, settings: Settings
) -> None:
    if incident.is_exercise and summary.objectives_met is None:
        raise Unprocessable(
            "An exercise records whether the plan met its objectives.",
            errors=[field_error(("body", "summary", "objectives_met"), "required for an exercise")],
        )
    linked = {r.id: r for r in linked_risks(session, incident)}
    for i, action in enumerate(summary.follow_up_actions):
        if action.control_for is None:
            continue
        loc = ("body", "summary", "follow_up_actions", i, "control_for")
        try:
            risk_id = risks.parse_risk_ref(action.control_for)
        except NotFound as exc:
            raise Unprocessable(exc.detail, errors=[field_error(loc, "not a risk reference")]) from exc
        if risk_id not in linked:
            raise Unprocessable(
                f"{action.control_for} is not linked to {incident.reference}.",
                errors=[field_error(loc, "not a linked risk")],
            )
        risk = risks.get_risk(session, risk_id, for_update=True)
        control = ControlCreate(title=action.title, owner=action.owner, due_date=action.due_date)
        try:
            risks.add_control(session, risk, control, who, settings)
        except InvalidTransition as exc:  # the risk was closed meanwhile: say which follow-up cannot land
            raise Conflict(exc.detail, errors=[field_error(loc, "the risk is closed")]) from exc
        _log(
            session, incident, who, "control.added", f"Follow-up '{action.title}' became a control on {risk.reference}"
        )
    incident.summary = summary.model_dump(mode="json")
    incident.objectives_met = summary.objectives_met if incident.is_exercise else None


# ---- roles, steps, messages, notes ----


def assign_role(session: Session, incident: Incident, key: str, assignee: str, who: Principal) -> IncidentRole:
    role = _one(session, IncidentRole, incident, key, "role")
    previous, role.assignee, role.assigned_at = role.assignee, assignee, utcnow()
    session.add(role)
    text = f"{role.title}: {assignee}" + (f" (was {previous})" if previous else "")
    _log(session, incident, who, "role.assigned", text, role=key, assignee=assignee)
    return role


StepAction = Literal["assign", "start", "complete", "skip"]


def change_step(
    session: Session, incident: Incident, key: str, action: StepAction, who: Principal,
    *, assignee: str | None = None, reason: str | None = None, note: str | None = None,
) -> IncidentStep:  # fmt: skip
    step = _one(session, IncidentStep, incident, key, "step")
    finished = step.status in (StepStatus.done, StepStatus.skipped)
    if finished and action != "assign":
        raise InvalidTransition(f"Step '{key}' is already {step.status}.", allowed=[])
    now = utcnow()
    if action == "assign":
        step.assignee = assignee
        _log(session, incident, who, "step.assigned", f"Step '{step.title}' assigned to {assignee}", step=key)
    elif action == "start":
        if step.status == StepStatus.in_progress:
            raise InvalidTransition(f"Step '{key}' is already in progress.", allowed=["complete", "skip"])
        _require_dependencies(session, incident, step)
        step.status, step.started_at = StepStatus.in_progress, now
        _log(session, incident, who, "step.started", f"Step '{step.title}' started", step=key)
    elif action == "complete":
        _require_dependencies(session, incident, step)
        step.status, step.finished_at, step.finished_by = StepStatus.done, now, who.name
        step.started_at = step.started_at or now
        text = f"Step '{step.title}' done" + (f": {note}" if note else "")
        _log(session, incident, who, "step.completed", text, step=key, note=note)
        events.emit(
            session, "step.completed", "incident", incident.reference, _event(incident, who, step=key, note=note)
        )
        scheduled.cancel_obligation(session, step)
    else:
        step.status, step.finished_at, step.finished_by, step.skip_reason = StepStatus.skipped, now, who.name, reason
        _log(session, incident, who, "step.skipped", f"Step '{step.title}' skipped: {reason}", step=key)
        scheduled.cancel_obligation(session, step)
    session.add(step)
    return step


def _require_dependencies(session: Session, incident: Incident, step: IncidentStep) -> None:
    """A step starts or completes only once every step it depends on is done or skipped."""
    if not step.depends_on:
        return
    rows = session.exec(
        select(IncidentStep.key, IncidentStep.status).where(
            IncidentStep.incident_id == incident.id, col(IncidentStep.key).in_(step.depends_on)
        )
    ).all()
    waiting = sorted(k for k, status in rows if status in UNFINISHED_STEP)
    if waiting:
        raise Conflict(
            f"Step '{step.key}' depends on steps that are not done: {', '.join(waiting)}.", waiting_for=waiting
        )


def mark_message_sent(
    session: Session, incident: Incident, key: str, who: Principal, note: str | None
) -> IncidentMessage:
    message = _one(session, IncidentMessage, incident, key, "communication")
    if message.status == MessageStatus.sent:
        raise InvalidTransition(f"Communication '{key}' was already sent at {message.sent_at}.", allowed=[])
    message.status, message.sent_at, message.sent_by = MessageStatus.sent, utcnow(), who.name
    session.add(message)
    scheduled.cancel_obligation(session, message)
    text = f"Message to {message.audience} sent: {message.title}" + (f" ({note})" if note else "")
    _log(session, incident, who, "message.sent", text, communication=key, audience=str(message.audience))
    return message


def add_note(session: Session, incident: Incident, text: str, who: Principal) -> TimelineEntry:
    return _log(session, incident, who, "note", text)


PlanRow = TypeVar("PlanRow", IncidentRole, IncidentStep, IncidentMessage)


def _one(session: Session, model: type[PlanRow], incident: Incident, key: str, what: str) -> PlanRow:
    row = session.exec(select(model).where(model.incident_id == incident.id, model.key == key)).first()
    if row is None:
        raise NotFound(f"{incident.reference} has no {what} '{key}'.")
    return row


def _log(session: Session, incident: Incident, who: Principal, kind: str, text: str, **data: object) -> TimelineEntry:
    entry = TimelineEntry(incident_id=incident.id, actor=who.name, kind=kind, text=text, data=data)
    session.add(entry)
    return entry


# ---- reading ----


def linked_risks(session: Session, incident: Incident) -> list[Risk]:
    return list(
        session.exec(
            select(Risk).join(IncidentRisk, col(IncidentRisk.risk_id) == col(Risk.id))
            .where(IncidentRisk.incident_id == incident.id).order_by(col(Risk.id))
        )
    )  # fmt: skip


def _risk_refs(session: Session, incident_ids: list[int]) -> dict[int, list[str]]:
    rows = session.exec(
        select(IncidentRisk.incident_id, IncidentRisk.risk_id)
        .where(col(IncidentRisk.incident_id).in_(incident_ids)).order_by(col(IncidentRisk.risk_id))
    ).all()  # fmt: skip
    out: dict[int, list[str]] = {i: [] for i in incident_ids}
    for incident_id, risk_id in rows:
        out[incident_id].append(reference(risk_id))
    return out


def rto_met(breach_at: datetime | None, resolved_at: datetime | None, at: datetime) -> bool | None:
    """Whether the recovery time objective was met, as known at `at`: False as soon as the breach time passes
    unresolved (or if resolved late), True once resolved in time, None while it can still go either way or
    without an RTO. `resolved_at` is the resolution as known at `at` (None if later)."""
    return deadline_met(breach_at, resolved_at, at)


def deadline_met(deadline: datetime | None, resolved_at: datetime | None, at: datetime) -> bool | None:
    """rto_met's rule for any deadline the incident must be resolved by (breach_at, mtpd_at)."""
    if deadline is None:
        return None
    if resolved_at is not None:
        return resolved_at <= deadline
    return False if at > deadline else None


def measures(incident: Incident) -> Measures:
    def seconds(end: datetime | None) -> float | None:
        return None if end is None else (end - incident.declared_at).total_seconds()

    now = utcnow()
    return Measures(
        # A machine's acknowledgement (an integration, a route that does not page) says nothing of people's speed.
        time_to_acknowledge_seconds=None if incident.acknowledged_automatically else seconds(incident.acknowledged_at),
        time_to_resolve_seconds=seconds(incident.resolved_at),
        rto_met=rto_met(incident.breach_at, incident.resolved_at, now),
        breached=deadline_met(incident.breach_at, incident.resolved_at, now) is False,
        mtpd_exceeded=deadline_met(incident.mtpd_at, incident.resolved_at, now) is False,
    )


def summarise(incident: Incident, risk_ids: list[str]) -> IncidentSummaryPublic:
    return IncidentSummaryPublic(
        id=incident.id, reference=incident.reference, title=incident.title, severity=incident.severity,
        state=incident.state, exercise=incident.is_exercise, playbook=incident.playbook_slug,
        playbook_version=incident.playbook_version, declared_at=incident.declared_at, breach_at=incident.breach_at,
        risk_ids=risk_ids,
    )  # fmt: skip


def present(session: Session, incident: Incident) -> IncidentPublic:
    now = utcnow()
    where = {"incident_id": incident.id}
    roles = session.exec(select(IncidentRole).filter_by(**where).order_by(col(IncidentRole.id))).all()
    steps = session.exec(select(IncidentStep).filter_by(**where).order_by(col(IncidentStep.position))).all()
    messages = session.exec(select(IncidentMessage).filter_by(**where).order_by(col(IncidentMessage.position))).all()
    # Owed and past due, whatever the incident's state: resolving does not discharge an obligation.
    step_views = [
        StepPublic.model_validate(s).model_copy(update={"overdue": s.status in UNFINISHED_STEP and s.due_at < now})
        for s in steps
    ]
    message_views = [
        MessagePublic.model_validate(m).model_copy(update={"overdue": m.status in UNSENT_MESSAGE and m.due_at < now})
        for m in messages
    ]
    base = summarise(incident, _risk_refs(session, [incident.id])[incident.id])
    return IncidentPublic(
        **base.model_dump(),
        description=incident.description, declared_by=incident.declared_by, detected_at=incident.detected_at,
        acknowledged_at=incident.acknowledged_at, acknowledged_by=incident.acknowledged_by,
        acknowledged_automatically=incident.acknowledged_automatically, mitigated_at=incident.mitigated_at,
        resolved_at=incident.resolved_at, closed_at=incident.closed_at, rto_minutes=incident.rto_minutes,
        mtpd_minutes=incident.mtpd_minutes, mtpd_at=incident.mtpd_at,
        allowed_transitions=sorted(TRANSITIONS[incident.state]),
        unfilled_required_roles=[r.key for r in roles if r.required and r.assignee is None],
        measures=measures(incident),
        summary=PostIncidentSummary.model_validate(incident.summary) if incident.summary else None,
        objectives_met=incident.objectives_met,
        roles=[RolePublic.model_validate(r) for r in roles], steps=step_views, communications=message_views,
        version=incident.version,
    )  # fmt: skip


def list_incidents(
    session: Session, *, exercise: bool = False, state: Sequence[IncidentState] = (),
    severity: Sequence[Severity] = (), playbook: str | None = None, risk: str | None = None, q: str | None = None,
    cursor: str | None = None, limit: int = 50,
) -> tuple[list[IncidentSummaryPublic], str | None]:  # fmt: skip
    """Newest first. Exercises are listed apart: exercise=true lists only drills, false only real incidents.
    `q` finds text in the title or description, whatever its case."""
    query = select(Incident).where(Incident.is_exercise == exercise)
    if q:
        query = query.where(
            or_(
                col(Incident.title).icontains(q, autoescape=True),
                col(Incident.description).icontains(q, autoescape=True),
            )
        )
    if state:  # several values mean any of them
        query = query.where(col(Incident.state).in_(state))
    if severity:
        query = query.where(col(Incident.severity).in_(severity))
    if playbook is not None:
        query = query.where(Incident.playbook_slug == playbook)
    if risk is not None:
        linked = select(IncidentRisk.incident_id).where(IncidentRisk.risk_id == risks.parse_risk_ref(risk))
        query = query.where(col(Incident.id).in_(linked))
    before = decode_id_cursor(cursor)
    if before is not None:
        query = query.where(col(Incident.id) < before)
    rows, next_cursor = id_page(list(session.exec(query.order_by(col(Incident.id).desc()).limit(limit + 1))), limit)
    links = _risk_refs(session, [r.id for r in rows])
    return [summarise(r, links[r.id]) for r in rows], next_cursor


def counts(session: Session, *, exercise: bool = False) -> IncidentCounts:
    rows = session.exec(select(Incident.state, Incident.severity).where(Incident.is_exercise == exercise)).all()
    return IncidentCounts(
        exercise=exercise,
        by_state=dict(Counter(str(state) for state, _ in rows)),
        by_severity=dict(Counter(str(severity) for _, severity in rows)),
    )


def timeline(
    session: Session, incident: Incident, *, cursor: str | None = None, limit: int = 200
) -> tuple[list[TimelineEntry], str | None]:
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    after = decode_id_cursor(cursor)
    if after is not None:
        query = query.where(col(TimelineEntry.id) > after)
    return id_page(list(session.exec(query.order_by(col(TimelineEntry.id)).limit(limit + 1))), limit)
