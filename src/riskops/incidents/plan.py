"""Working an incident's plan: filling its roles, moving its steps, sending its communications."""

from typing import Literal, TypeVar

from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.errors import Conflict, InvalidTransition, NotFound
from riskops.events import service as events
from riskops.incidents import scheduled, timeline
from riskops.incidents.models import (
    UNFINISHED_STEP,
    Incident,
    IncidentMessage,
    IncidentRole,
    IncidentStep,
    MessageStatus,
    StepStatus,
)


def assign_role(session: Session, incident: Incident, key: str, assignee: str, who: Principal) -> IncidentRole:
    role = _one(session, IncidentRole, incident, key, "role")
    previous, role.assignee, role.assigned_at = role.assignee, assignee, utcnow()
    session.add(role)
    text = f"{role.title}: {assignee}" + (f" (was {previous})" if previous else "")
    timeline.record(session, incident, who, "role.assigned", text, role=key, assignee=assignee)
    return role


StepAction = Literal["assign", "start", "complete", "skip"]


StepMove = Literal["start", "complete", "skip"]


def step_moves(status: StepStatus, *, waiting: bool) -> tuple[StepMove, ...]:
    """What a step takes now: a finished one nothing; one waiting for unfinished steps only a skip; one in
    progress no second start. change_step refuses the rest (the dependencies it checks in the database)."""
    if status not in UNFINISHED_STEP:
        return ()
    if waiting:
        return ("skip",)
    return ("complete", "skip") if status == StepStatus.in_progress else ("start", "complete", "skip")


def change_step(
    session: Session, incident: Incident, key: str, action: StepAction, who: Principal,
    *, assignee: str | None = None, reason: str | None = None, note: str | None = None,
) -> IncidentStep:  # fmt: skip
    step = _one(session, IncidentStep, incident, key, "step")
    if action != "assign" and action not in (moves := step_moves(step.status, waiting=False)):
        state = str(step.status).replace("_", " ")
        raise InvalidTransition(f"Step '{key}' is already {state}.", allowed=list(moves))
    now = utcnow()
    if action == "assign":
        step.assignee = assignee
        timeline.record(
            session, incident, who, "step.assigned", f"Step '{step.title}' assigned to {assignee}", step=key
        )
    elif action == "start":
        _require_dependencies(session, incident, step)
        step.status, step.started_at = StepStatus.in_progress, now
        timeline.record(session, incident, who, "step.started", f"Step '{step.title}' started", step=key)
    elif action == "complete":
        _require_dependencies(session, incident, step)
        step.status, step.finished_at, step.finished_by = StepStatus.done, now, who.name
        step.started_at = step.started_at or now
        text = f"Step '{step.title}' done" + (f": {note}" if note else "")
        timeline.record(session, incident, who, "step.completed", text, step=key, note=note)
        data = scheduled.event_data(incident, actor=who.name, step=key, note=note)
        events.emit(session, "step.completed", "incident", incident.reference, data)
        scheduled.cancel_obligation(session, step)
    else:
        step.status, step.finished_at, step.finished_by, step.skip_reason = StepStatus.skipped, now, who.name, reason
        timeline.record(session, incident, who, "step.skipped", f"Step '{step.title}' skipped: {reason}", step=key)
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
    timeline.record(session, incident, who, "message.sent", text, communication=key, audience=str(message.audience))
    return message


PlanRow = TypeVar("PlanRow", IncidentRole, IncidentStep, IncidentMessage)


def _one(session: Session, model: type[PlanRow], incident: Incident, key: str, what: str) -> PlanRow:
    row = session.exec(select(model).where(model.incident_id == incident.id, model.key == key)).first()
    if row is None:
        raise NotFound(f"{incident.reference} has no {what} '{key}'.")
    return row
