"""The register's deadlines: review reminders and overdue reviews. (An acceptance's are its own: risks.acceptances.
scheduled.)"""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.events import service as events
from riskops.mail import service as mail
from riskops.notices import service as scheduler
from riskops.notices.models import Notice
from riskops.notices.service import NoticeHandler
from riskops.risks.models import Risk, RiskStatus

REVIEW_DUE, REVIEW_OVERDUE = "risk.review_due", "risk.review_overdue"
KINDS = (REVIEW_DUE, REVIEW_OVERDUE)
# A fact for other domains to act on: this open risk has (newly) this owner. The review cycle handles it.
OWNER_ASSIGNED = "risk.owner_assigned"


def owner_key(owner: str) -> str:
    """Owners are matched case-insensitively and without surrounding spaces, everywhere."""
    return owner.strip().lower()  # SQL's lower(), as the owner index is built on both databases


def plan_owner_assigned(session: Session, risk: Risk) -> None:
    """Planned when a risk is logged, reopened or changes owner; due at once."""
    if risk.status == RiskStatus.open:
        scheduler.plan(session, [owner_assigned_notice(risk.id, risk.owner, risk.version, utcnow())])


def owner_assigned_notice(risk_id: int, owner: str, version: int, now: datetime) -> dict[str, Any]:
    """Keyed by owner and the risk's version, so every hand-over (back to an earlier owner too) plans one; the
    review cycle asks each owner once."""
    digest = hashlib.sha256(owner_key(owner).encode()).hexdigest()[:32]
    return scheduler.notice(OWNER_ASSIGNED, "risk", risk_id, f"{digest}@v{version}", now, {"owner": owner})


def plan_notices(session: Session, risk: Risk, settings: Settings) -> None:
    """Re-plan the risk's notices after any change: each is keyed by the date it is about, so one fired
    for the same date is never planned again, and one for a date that moved is dropped."""
    scheduler.cancel(session, "risk", risk.id, KINDS)
    if risk.status != RiskStatus.open:
        return
    scheduler.plan(session, date_notices(risk.id, risk.next_review_at, settings))


def date_notices(risk_id: int, review: datetime, settings: Settings) -> list[dict[str, Any]]:
    """An open risk's review reminder and overdue notice."""
    reminder = review - timedelta(days=settings.review_reminder_days)
    return [
        scheduler.notice(REVIEW_DUE, "risk", risk_id, review.isoformat(), reminder),
        scheduler.notice(REVIEW_OVERDUE, "risk", risk_id, review.isoformat(), review),
    ]


def remind_of_date(session: Session, notice: Notice, settings: Settings) -> None:
    """A review date is near or past: tell the subscribers, and the owner by e-mail."""
    risk = session.get(Risk, notice.subject_id)
    if risk is None or risk.status != RiskStatus.open:
        return
    anchor = risk.next_review_at
    if anchor != datetime.fromisoformat(notice.ref):
        return  # the date moved since this was planned
    data = {
        "id": risk.id, "reference": risk.reference, "title": risk.title, "owner": risk.owner, "level": risk.level,
        "next_review_at": risk.next_review_at.isoformat(), "due_at": anchor.isoformat(),
        "acceptance_expires_at": risk.acceptance_expires_at.isoformat() if risk.acceptance_expires_at else None,
    }  # fmt: skip
    events.emit(session, notice.kind, "risk", risk.reference, data)
    if mail.looks_like_address(risk.owner):
        what = "is due for review" if notice.kind == REVIEW_DUE else "is overdue for review"
        mail.queue(
            session, risk.owner, f"[riskops] {risk.reference} {what}",
            f"{risk.reference} {risk.title} ({risk.level}) {what}: the review date is "
            f"{anchor:%Y-%m-%d %H:%M} UTC.\n\nRecord the review as a reassessment in riskops.",
        )  # fmt: skip


NOTICE_HANDLERS: dict[str, NoticeHandler] = dict.fromkeys(KINDS, remind_of_date)
