"""A treatment action's deadline: overdue the day after its due date, told to its owner; still open some days
later, escalated to the risk's owner as well."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session

from riskops.config import Settings
from riskops.events import service as events
from riskops.mail import service as mail
from riskops.notices import service as scheduler
from riskops.notices.models import Notice
from riskops.notices.service import NoticeHandler
from riskops.risks.models import Risk, RiskStatus
from riskops.risks.scheduled import owner_key
from riskops.treatments.models import OPEN, TreatmentAction, cost_of

ACTION_OVERDUE, ACTION_ESCALATED = "treatment.action_overdue", "treatment.action_escalated"
KINDS = (ACTION_OVERDUE, ACTION_ESCALATED)
SUBJECT = "treatment_action"


def overdue_from(due_date: date) -> datetime:
    """A due date lasts through that day (UTC), as an acceptance's expiry given as a date does."""
    return datetime.combine(due_date + timedelta(days=1), time.min, UTC)


def plan_notices(session: Session, action: TreatmentAction, settings: Settings) -> None:
    """Re-plan after any change: keyed by the due date, so a date already told of is not told again, and the
    notices of a date that moved (or of an action finished) are dropped."""
    scheduler.cancel(session, SUBJECT, action.id, KINDS)
    if action.status not in OPEN:
        return
    overdue, ref = overdue_from(action.due_date), action.due_date.isoformat()
    escalated = overdue + timedelta(days=settings.treatment_escalation_days)
    scheduler.plan(
        session,
        [
            scheduler.notice(ACTION_OVERDUE, SUBJECT, action.id, ref, overdue),
            scheduler.notice(ACTION_ESCALATED, SUBJECT, action.id, ref, escalated),
        ],
    )


def action_data(risk: Risk, action: TreatmentAction) -> dict[str, Any]:
    """What every treatment event says of the action and its risk."""
    cost = cost_of(action)
    return {
        "id": action.id, "title": action.title, "owner": action.owner, "due_date": action.due_date.isoformat(),
        "status": str(action.status), "cost": cost.model_dump(mode="json") if cost else None,
        "control_id": action.control_id, "control_effect": action.control_effect,
        "risk": {"id": risk.id, "reference": risk.reference, "title": risk.title, "owner": risk.owner,
                 "level": risk.level},
    }  # fmt: skip


def remind_overdue(session: Session, notice: Notice, settings: Settings) -> None:
    """An open action's due date has passed: the subscribers hear of it, and its owner by e-mail; at the
    escalation, the risk's owner too."""
    action = session.get(TreatmentAction, notice.subject_id)
    if action is None or action.status not in OPEN or action.due_date.isoformat() != notice.ref:
        return  # finished, or its date moved, since this was planned
    risk = session.get(Risk, action.risk_id)
    if risk is None or risk.status != RiskStatus.open:
        return  # a closed risk's plan is a record: no one is asked to act on it
    days = (notice.due_at - overdue_from(action.due_date)).days
    events.emit(session, notice.kind, "risk", risk.reference, {**action_data(risk, action), "days_overdue": days})
    what = "is overdue" if notice.kind == ACTION_OVERDUE else f"is {days} days overdue"
    subject = f"[riskops] {risk.reference} treatment action {what}: {action.title}"
    body = (
        f'The treatment action "{action.title}" (owner: {action.owner}) of {risk.reference} {risk.title} '
        f"({risk.level}, owner: {risk.owner}) was due on {action.due_date:%Y-%m-%d} and {what}.\n\n"
        "Record its progress in riskops: mark it done, move its due date, or cancel it with a reason."
    )
    recipients = [action.owner] if notice.kind == ACTION_OVERDUE else [action.owner, risk.owner]
    for to in {owner_key(r): r.strip() for r in recipients if mail.looks_like_address(r)}.values():
        mail.queue(session, to, subject, body)


NOTICE_HANDLERS: dict[str, NoticeHandler] = dict.fromkeys(KINDS, remind_overdue)
