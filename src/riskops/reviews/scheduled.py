"""The review cycle's timed work: owners who get risks while a cycle is open are asked then."""

from sqlmodel import Session

from riskops.reviews import service
from riskops.risks import scheduled as risk_deadlines
from riskops.risks.models import Risk, RiskStatus
from riskops.scheduler.models import Notice

KINDS = (risk_deadlines.OWNER_ASSIGNED,)


def fire(session: Session, notice: Notice) -> None:
    """A risk was logged, reopened or handed to an owner: ask that owner, once per cycle, if a cycle is open."""
    risk = session.get(Risk, notice.subject_id)
    owner = str(notice.data.get("owner", ""))
    if risk is None or risk.status != RiskStatus.open:
        return
    if risk_deadlines.owner_key(risk.owner) != risk_deadlines.owner_key(owner):
        return  # handed on again since: the notice for the new owner asks them
    cycle = service.current_open_cycle(session)
    if cycle is not None:
        service.request_review(session, cycle, risk.owner)
