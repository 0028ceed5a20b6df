"""An acceptance's deadlines: the warning before it expires and its expiry, each fired once by the notices
scheduler. Each also announces itself on every open risk the acceptance holds (risk.acceptance_expiring and
risk.acceptance_expired, as the register did when an acceptance was two fields on the risk)."""

from datetime import datetime
from typing import Any

from sqlmodel import Session

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.events import service as events
from riskops.notices.models import Notice
from riskops.notices.service import NoticeHandler
from riskops.risks import service as risks
from riskops.risks.acceptances import records, service
from riskops.risks.acceptances.models import AcceptanceRecord, AcceptanceStatus
from riskops.risks.models import Risk, RiskStatus

RISK_EXPIRING, RISK_EXPIRED = "risk.acceptance_expiring", "risk.acceptance_expired"
SCHEDULER = Principal(key_id=0, name="scheduler", role=Role.admin, automatic=True)


def _due(session: Session, notice: Notice) -> AcceptanceRecord | None:
    """The acceptance, if it is still in force with the expiry the notice was planned for."""
    acceptance = session.get(AcceptanceRecord, notice.subject_id)
    if acceptance is None or service.lock(session, acceptance).status != AcceptanceStatus.approved:
        return None
    return acceptance if acceptance.expires_at == datetime.fromisoformat(notice.ref) else None


def _announce_on_risks(session: Session, acceptance: AcceptanceRecord, event_type: str) -> list[str]:
    """The risk event on each open risk the acceptance holds; their references."""
    held = [c for c in records.covers(session, acceptance.id) if c.released_at is None]
    announced = []
    for cover in held:
        risk = risks.get_risk(session, cover.risk_id, for_update=True)
        if risk.status == RiskStatus.open:
            events.emit(session, event_type, "risk", risk.reference, _risk_data(risk, acceptance))
            announced.append(risk.reference)
    return announced


def _risk_data(risk: Risk, acceptance: AcceptanceRecord) -> dict[str, Any]:
    return {
        "id": risk.id, "reference": risk.reference, "title": risk.title, "owner": risk.owner, "level": risk.level,
        "next_review_at": risk.next_review_at.isoformat(), "due_at": acceptance.expires_at.isoformat(),
        "acceptance_expires_at": acceptance.expires_at.isoformat(), "acceptance": acceptance.reference,
    }  # fmt: skip


def warn_of_expiry(session: Session, notice: Notice, settings: Settings) -> None:
    if (acceptance := _due(session, notice)) is None:
        return
    announced = _announce_on_risks(session, acceptance, RISK_EXPIRING)
    records.announce(session, "expiring", acceptance, announced, SCHEDULER)


def expire(session: Session, notice: Notice, settings: Settings) -> None:
    """The acceptance ends: its risks go back to their plan, to be reassessed."""
    if (acceptance := _due(session, notice)) is None:
        return
    # Planned by migration 0014 for an acceptance the register had announced as expired on its risks already.
    if notice.data.get("risk_events", True):
        _announce_on_risks(session, acceptance, RISK_EXPIRED)
    service.end(session, acceptance, AcceptanceStatus.expired, SCHEDULER, settings, "its expiry date passed")


NOTICE_HANDLERS: dict[str, NoticeHandler] = {records.EXPIRING: warn_of_expiry, records.EXPIRED: expire}
