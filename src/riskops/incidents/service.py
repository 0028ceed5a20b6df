"""An incident's life: finding it, the state machine that moves it to its close, and how it measured up to
its deadlines."""

import re
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import get_row
from riskops.errors import Conflict, InvalidTransition, NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.incidents import scheduled, timeline
from riskops.incidents.declaration import linked_risks
from riskops.incidents.models import (
    UNFINISHED_STEP,
    UNSENT_MESSAGE,
    Closure,
    Incident,
    IncidentMessage,
    IncidentState,
    IncidentStep,
    Measures,
    PostIncidentSummary,
)
from riskops.risks import applied_controls
from riskops.risks import service as risks
from riskops.risks.library import ControlCreate

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


def takes_changes(state: IncidentState) -> bool:
    """Whether the plan (roles, steps, communications, notes) still takes changes: not once closed."""
    return state != IncidentState.closed


def get_for_change(session: Session, ref: str) -> Incident:
    """The incident, locked for this transaction; a closed incident takes no more changes."""
    incident = get_incident(session, ref, for_update=True)
    if not takes_changes(incident.state):
        raise InvalidTransition(f"{incident.reference} is closed; it takes no more changes.", allowed=[])
    return incident


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
    scheduled.reschedule(session, incident, old, settings)
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
    timeline.record(session, incident, who, "state.changed", text, **moved)
    change = {**moved, "action": action, "note": note}
    changed = scheduled.event_data(incident, actor=who.name, **change)
    events.emit(session, "incident.state_changed", "incident", incident.reference, changed)
    if action == "acknowledge":
        acknowledged = scheduled.event_data(incident, actor=who.name, note=note)
        events.emit(session, "incident.acknowledged", "incident", incident.reference, acknowledged)
    session.flush()
    return incident


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
            applied_controls.add_control(session, risk, control, who, settings)
        except InvalidTransition as exc:  # the risk was closed meanwhile: say which follow-up cannot land
            raise Conflict(exc.detail, errors=[field_error(loc, "the risk is closed")]) from exc
        timeline.record(
            session, incident, who, "control.added", f"Follow-up '{action.title}' became a control on {risk.reference}"
        )
    incident.summary = summary.model_dump(mode="json")
    incident.objectives_met = summary.objectives_met if incident.is_exercise else None


# ---- how it measured up ----


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
