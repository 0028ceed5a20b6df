"""request_reassessment: what other domains call when a risk may no longer be rated right."""

from sqlmodel import Session, select

from riskops.audit.models import AuditEntry
from riskops.clock import now as utcnow
from riskops.events.models import Event
from riskops.risks import service
from riskops.risks.models import RiskCreate, StatusChange
from riskops.risks.ratings import Rating
from tests.conftest import ADMIN, SETTINGS


def test_open_risks_fall_due_now_with_history_and_event_and_closed_ones_stay(session: Session) -> None:
    def new(title: str) -> int:
        data = RiskCreate(title=title, category="IT", owner="ops", inherent=Rating(likelihood=2, impact=3))
        return service.add_risk(session, data, ADMIN, SETTINGS)

    open_id, closed_id = new("Open"), new("Closed")
    service.change_status(session, service.get_risk(session, closed_id), "close", StatusChange(reason="gone"), ADMIN,
                          SETTINGS)  # fmt: skip
    session.commit()
    closed_before = service.get_risk(session, closed_id).next_review_at
    risks = [service.get_risk(session, i, for_update=True) for i in (open_id, closed_id)]
    service.request_reassessment(session, risks, "Control C-1 tested ineffective", ADMIN, SETTINGS,
                                 extra={"control": 1})  # fmt: skip
    session.commit()

    opened = service.get_risk(session, open_id)
    assert opened.next_review_at <= utcnow() and opened.version == 2
    assert service.get_risk(session, closed_id).next_review_at == closed_before
    entry = session.exec(
        select(AuditEntry).where(AuditEntry.entity_id == str(open_id), AuditEntry.action == "reassessment_requested")
    ).one()
    assert entry.note == "Control C-1 tested ineffective" and "next_review_at" in entry.changes
    [event] = session.exec(select(Event).where(Event.type == "risk.reassessment_requested")).all()
    assert event.subject_id == opened.reference and event.data["control"] == 1
