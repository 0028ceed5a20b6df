"""Declaring an incident: its linked risks, and activating its playbook, whose roles, steps and communications
are laid out with absolute deadlines and rendered messages."""

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.continuity import recovery
from riskops.db import insert_numbered, table_of
from riskops.errors import Conflict, NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.incidents import scheduled, timeline
from riskops.incidents.escalations import service as escalations
from riskops.incidents.models import (
    Incident,
    IncidentCreate,
    IncidentMessage,
    IncidentRisk,
    IncidentRole,
    IncidentStep,
    MessageStatus,
    RiskRef,
    StepStatus,
)
from riskops.playbooks import service as playbooks
from riskops.playbooks.models import PlaybookVersion
from riskops.playbooks.objectives import Figures
from riskops.playbooks.spec import PlaybookSpec
from riskops.risks import service as risks
from riskops.risks.models import Risk


def declare(
    session: Session, data: IncidentCreate, who: Principal, settings: Settings,
    *, plan: PlaybookVersion | None = None,
) -> Incident:  # fmt: skip
    """Declare an incident, activating its playbook (if any) in the same transaction. `plan`: the version of
    data.playbook that the caller has looked up already."""
    now = utcnow()
    if data.detected_at is not None and data.detected_at > now:
        raise Unprocessable(
            "The detection time cannot be in the future.",
            errors=[field_error(("body", "detected_at"), "in the future")],
        )
    linked = _resolve_risks(session, data.risk_ids)
    try:
        if plan is None and data.playbook:
            plan = playbooks.get_version(session, data.playbook, data.playbook_version)
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
    objectives = recovery.effective(session, spec) if spec is not None else None
    if plan is not None and objectives is not None:
        _follow(incident, plan, objectives.figures)
    session.add(incident)
    session.flush()  # one insert: the rows below name its id
    kind = "exercise" if data.exercise else "incident"
    text = f"{severity} {kind} declared: {incident.title}"
    if incident.detected_at < now:
        text += f" (detected {incident.detected_at:%Y-%m-%d %H:%M} UTC)"
    entries = [
        timeline.entry(
            incident, who, "declared", text, now, severity=severity, detected_at=incident.detected_at.isoformat()
        )
    ]
    outbox = events.Outbox()
    if linked:
        links = [{"incident_id": incident.id, "risk_id": risk.id} for risk in linked]
        session.execute(insert(table_of(IncidentRisk)), links)
        if not data.exercise:  # a drill is not the risk happening
            note = f"{incident.reference}: {incident.title}"
            risks.mark_all_materialised(session, linked, note, who, settings, outbox)
        entries += [
            timeline.entry(
                incident, who, "risk.linked", f"Linked to {risk.reference} {risk.title}", now, risk=risk.reference
            )
            for risk in linked
        ]
    owed: list[scheduled.Owed] = []
    if plan is not None and spec is not None:
        owed = _lay_out(session, incident, spec)
        due = f"recovery due by {_iso(incident.breach_at)}" if incident.breach_at else "no recovery time objective"
        entries.append(
            timeline.entry(
                incident, who, "playbook.activated",
                f"Playbook '{plan.slug}' v{plan.version} activated: {len(spec.steps)} steps, "
                f"{len(spec.communications)} communications, {due}",
                now, playbook=plan.slug, version=plan.version,
            )
        )  # fmt: skip
        # What validating the plan against the processes it restores found, for whoever leads the recovery.
        entries += [
            timeline.entry(incident, who, "note", f"Recovery objectives: {warning}.", now)
            for warning in (objectives.warnings if objectives else [])
        ]
    wanted = spec.escalation_policy if spec else None
    policy = escalations.resolve(session, wanted)
    if wanted is not None and policy.name != wanted:
        text = f"Escalation policy '{wanted}' does not exist; using '{policy.name}'."
        entries.append(timeline.entry(incident, who, "note", text, now))
    timeline.record_all(session, entries)
    scheduled.reschedule(session, incident, None, settings, policy=policy, owed=owed)
    about = scheduled.event_data(incident, actor=who.name)
    outbox.emit("incident.declared", "incident", incident.reference, about)
    if plan is not None:
        outbox.emit("playbook.activated", "incident", incident.reference, about)
    events.record(session, outbox)
    session.flush()  # the linked risks' changes
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


def linked_risks(session: Session, incident: Incident) -> list[Risk]:
    return list(
        session.exec(
            select(Risk).join(IncidentRisk, col(IncidentRisk.risk_id) == col(Risk.id))
            .where(IncidentRisk.incident_id == incident.id).order_by(col(Risk.id))
        )
    )  # fmt: skip


def _follow(incident: Incident, plan: PlaybookVersion, figures: Figures) -> None:
    """The plan's objectives on the incident (its own, or the strictest of the processes it restores, as they stand
    at activation): the RTO and the MTPD, counted from the declaration; none where neither sets one."""
    incident.playbook_slug, incident.playbook_version = plan.slug, plan.version
    incident.rto_minutes, incident.mtpd_minutes = figures.rto_minutes, figures.mtpd_minutes
    incident.breach_at = _after(incident.declared_at, figures.rto_minutes)
    incident.mtpd_at = _after(incident.declared_at, figures.mtpd_minutes)


def _after(start: datetime, minutes: int | None) -> datetime | None:
    return None if minutes is None else start + timedelta(minutes=minutes)


def _lay_out(session: Session, incident: Incident, spec: PlaybookSpec) -> list[scheduled.Owed]:
    """Lay out the plan with absolute deadlines, each counted from the declaration or the detection as the
    playbook says, one insert per table; the steps and communications now owed."""
    start = {"declaration": incident.declared_at, "detection": incident.detected_at}
    roles = [
        {
            "incident_id": incident.id, "key": role.id, "title": role.title, "instructions": role.instructions,
            "required": role.required, "assignee": None, "assigned_at": None,
        }
        for role in spec.roles
    ]  # fmt: skip
    if roles:
        session.execute(insert(table_of(IncidentRole)), roles)
    steps: list[dict[str, Any]] = [
        {
            "incident_id": incident.id, "key": step.id, "position": i, "title": step.title,
            "instructions": step.instructions, "role": step.role, "depends_on": step.depends_on,
            "due_at": start[step.due_from] + timedelta(minutes=step.due_minutes), "required": not step.optional,
            "status": StepStatus.pending, "assignee": None, "started_at": None, "finished_at": None,
            "finished_by": None, "skip_reason": None,
        }
        for i, step in enumerate(spec.steps)
    ]  # fmt: skip
    messages: list[dict[str, Any]] = [
        {
            "incident_id": incident.id, "key": message.id, "position": i, "audience": message.audience,
            "title": message.title, "role": message.role, "channel": message.channel,
            "body": render(message.template, incident), "required": not message.optional,
            "due_at": start[message.due_from] + timedelta(minutes=message.due_minutes),
            "status": MessageStatus.pending, "sent_at": None, "sent_by": None,
        }
        for i, message in enumerate(spec.communications)
    ]  # fmt: skip
    owed: list[scheduled.Owed] = []
    for subject_type, model, rows in (("step", IncidentStep, steps), ("message", IncidentMessage, messages)):
        if rows:
            ids = insert_numbered(session, model, rows)
            owed += [scheduled.Owed(subject_type, i, row["due_at"]) for i, row in zip(ids, rows, strict=True)]
    return owed


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


_PLACEHOLDER = re.compile(r"\{(incident_title|incident_ref|declared_at|detected_at)\}")


def render(template: str, incident: Incident) -> str:
    values = {
        "incident_title": incident.title,
        "incident_ref": incident.reference,
        "declared_at": incident.declared_at.strftime("%Y-%m-%d %H:%M UTC"),
        "detected_at": incident.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
