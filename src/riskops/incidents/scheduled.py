"""An incident's deadlines: escalation while unacknowledged, step deadlines, the recovery-time breach."""

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from riskops.config import get_settings
from riskops.escalations import service as escalations
from riskops.escalations.models import PolicySpec
from riskops.events import service as events
from riskops.incidents.models import Incident, IncidentState, IncidentStep, StepStatus
from riskops.mail import service as mail
from riskops.scheduler import service as scheduler
from riskops.scheduler.models import Notice

STEP_DUE, STEP_OVERDUE = "step.due", "step.overdue"
BREACH_IMMINENT, BREACHED = "incident.breach_imminent", "incident.breached"
ESCALATION = escalations.ESCALATION
KINDS = (STEP_DUE, STEP_OVERDUE, BREACH_IMMINENT, BREACHED, ESCALATION)
OPEN = (IncidentState.declared, IncidentState.acknowledged, IncidentState.mitigated)


def event_data(incident: Incident, **extra: Any) -> dict[str, Any]:
    return {
        "id": incident.id, "reference": incident.reference, "title": incident.title,
        "severity": str(incident.severity), "state": str(incident.state), "exercise": incident.is_exercise,
        "playbook": incident.playbook_slug, "breach_at": incident.breach_at.isoformat() if incident.breach_at else None,
        **extra,
    }  # fmt: skip


def plan_on_declare(session: Session, incident: Incident, policy: PolicySpec, steps: list[IncidentStep]) -> None:
    planned = escalations.incident_notices(incident.id, incident.declared_at, policy) + breach_notices(incident, policy)
    for step in steps:
        planned += step_notices(incident, step)
    scheduler.plan(session, planned)


def breach_notices(incident: Incident, policy: PolicySpec) -> list[dict[str, Any]]:
    """A warning before the recovery time objective runs out, and a notice when it has."""
    if incident.breach_at is None:
        return []
    webhooks, emails = escalations.all_targets(policy)
    data = {"webhooks": sorted(webhooks), "emails": sorted(emails)}
    warning = max(incident.declared_at, incident.breach_at - timedelta(minutes=get_settings().breach_warning_minutes))
    ref = incident.breach_at.isoformat()
    return [
        scheduler.notice(BREACH_IMMINENT, "incident", incident.id, ref, warning, data),
        scheduler.notice(BREACHED, "incident", incident.id, ref, incident.breach_at, data),
    ]


def step_notices(incident: Incident, step: IncidentStep) -> list[dict[str, Any]]:
    reminder = max(incident.declared_at, step.due_at - timedelta(minutes=get_settings().step_reminder_minutes))
    ref, data = step.due_at.isoformat(), {"incident_id": incident.id}
    return [
        scheduler.notice(STEP_DUE, "step", step.id, ref, reminder, data),
        scheduler.notice(STEP_OVERDUE, "step", step.id, ref, step.due_at, data),
    ]


def cancel_escalation(session: Session, incident: Incident) -> None:
    scheduler.cancel(session, "incident", incident.id, (ESCALATION,))  # type: ignore[arg-type]


def cancel_deadlines(session: Session, incident: Incident, steps: list[IncidentStep]) -> None:
    scheduler.cancel(session, "incident", incident.id, (ESCALATION, BREACH_IMMINENT, BREACHED))  # type: ignore[arg-type]
    for step in steps:
        cancel_step(session, step)


def cancel_step(session: Session, step: IncidentStep) -> None:
    scheduler.cancel(session, "step", step.id, (STEP_DUE, STEP_OVERDUE))  # type: ignore[arg-type]


def fire(session: Session, notice: Notice) -> None:
    if notice.subject_type == "step":
        step = session.get(IncidentStep, notice.subject_id)
        incident = session.get(Incident, notice.data["incident_id"])
        if step is None or incident is None or incident.state not in OPEN:
            return
        if step.status in (StepStatus.done, StepStatus.skipped) or step.due_at != datetime.fromisoformat(notice.ref):
            return
        data = event_data(incident, step=step.key, step_title=step.title, due_at=step.due_at.isoformat())
        events.emit(session, notice.kind, "incident", incident.reference, data)
        return
    incident = session.get(Incident, notice.subject_id)
    if incident is None:
        return
    if notice.kind == ESCALATION:
        if incident.state != IncidentState.declared:
            return  # acknowledged meanwhile: escalation stops
        extra = {k: notice.data[k] for k in ("policy", "level", "round")}
        _notify(session, incident, "incident.escalated", notice, **extra)
    elif (
        incident.state in OPEN
        and incident.breach_at is not None
        and incident.breach_at == datetime.fromisoformat(notice.ref)
    ):
        _notify(session, incident, notice.kind, notice)


def _notify(session: Session, incident: Incident, kind: str, notice: Notice, **extra: Any) -> None:
    data = event_data(incident, **extra)
    events.emit(session, kind, "incident", incident.reference, data, targets=notice.data.get("webhooks", []))
    for address in notice.data.get("emails", []):
        what = kind.removeprefix("incident.").replace("_", " ")
        mail.queue(
            session, address, f"[riskops] {incident.reference} {what}: {incident.title}",
            f"{incident.reference} ({incident.severity}) {incident.title} is {incident.state}: {what}.\n"
            f"Declared {incident.declared_at:%Y-%m-%d %H:%M} UTC"
            + (f"; recovery due by {incident.breach_at:%Y-%m-%d %H:%M} UTC." if incident.breach_at else "."),
        )  # fmt: skip
