"""The review cycle's timed work: the quarterly kick-off, and owners who get risks while a cycle is open."""

from sqlmodel import Session

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database
from riskops.events import service as events
from riskops.notices import service as notices
from riskops.notices.models import Notice
from riskops.notices.service import NoticeHandler, PeriodicJob
from riskops.reviews import cycles
from riskops.reviews.models import ReviewCycle
from riskops.risks import scheduled as risk_deadlines
from riskops.risks.models import Risk, RiskStatus

QUARTERLY_REVIEW = "quarterly-review"
SCHEDULER = Principal(key_id=0, name="scheduler", role=Role.admin, automatic=True)


def ask_new_owner(session: Session, notice: Notice, settings: Settings) -> None:
    """A risk was logged, reopened or handed to an owner: ask that owner, once per cycle, if a cycle is open."""
    risk = session.get(Risk, notice.subject_id)
    owner = str(notice.data.get("owner", ""))
    if risk is None or risk.status != RiskStatus.open:
        return
    if risk_deadlines.owner_key(risk.owner) != risk_deadlines.owner_key(owner):
        return  # handed on again since: the notice for the new owner asks them
    cycle = cycles.current_open_cycle(session)
    if cycle is not None:
        cycles.request_review(session, cycle, risk.owner)


def start_quarter(database: Database, settings: Settings) -> bool:
    """The quarterly kick-off, once per quarter whatever the number of instances: opens the quarter's review
    cycle (unless someone already did), which asks every owner to review, and announces it."""
    period = cycles.cycle_id_for(utcnow(), settings.fiscal_year_start_month)
    with database.write() as session:
        if not notices.claim_period(session, QUARTERLY_REVIEW, period):
            return False
        if session.get(ReviewCycle, period) is None:
            cycles.open_cycle(session, period, SCHEDULER, settings)
        owners = cycles.open_risks_by_owner(session).values()  # "CISO" and "ciso" are one owner
        data = {
            "period": period, "open_risks": sum(len(o.risk_ids) for o in owners),
            "owners": {o.owner: len(o.risk_ids) for o in owners},
        }  # fmt: skip
        events.emit(session, "review.quarter_started", "review", period, data)
        return True


NOTICE_HANDLERS: dict[str, NoticeHandler] = {risk_deadlines.OWNER_ASSIGNED: ask_new_owner}
PERIODIC_JOBS: dict[str, PeriodicJob] = {QUARTERLY_REVIEW: start_quarter}
