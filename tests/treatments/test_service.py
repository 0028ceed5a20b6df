"""Treatment plans beside the risk's history: their entries sit in the risk's audit trail, and the register
replayed from that trail (snapshots, reviews) reads the same with or without them."""

from datetime import date

from sqlmodel import Session

from riskops.controls import service as controls
from riskops.controls.models import LibraryControlCreate
from riskops.reviews import snapshots
from riskops.risks import service as risks
from riskops.risks.models import RiskCreate
from riskops.risks.ratings import Rating
from riskops.treatments import service
from riskops.treatments.models import ActionCreate, ActionStatus, ActionUpdate, ControlEffect, Cost
from tests.conftest import SETTINGS, WRITER, FrozenClock


def test_plan_entries_leave_the_replayed_register_as_it_was(session: Session, frozen_clock: FrozenClock) -> None:
    data = RiskCreate(title="Flood", category="ops", owner="ops", inherent=Rating(likelihood=3, impact=4))
    risk_id = risks.add_risk(session, data, WRITER, SETTINGS)
    session.commit()
    register = snapshots.live_content(session)

    barrier = controls.create_control(session, LibraryControlCreate(title="Flood barrier", owner="ops"), WRITER)
    risk = risks.get_risk(session, risk_id, for_update=True)
    added = ActionCreate(
        title="Barriers", owner="facilities", due_date=date(2026, 9, 30), cost=Cost(currency="EUR", amount=10),
        control_id=barrier.id, control_effect=ControlEffect.creates,
    )  # fmt: skip
    action = service.add_action(session, risk, added, WRITER, SETTINGS)
    service.update_action(session, risk, action, ActionUpdate(status=ActionStatus.in_progress), WRITER, SETTINGS)
    session.commit()

    assert snapshots.live_content(session)["risks"] == register["risks"]
    assert risks.get_risk(session, risk_id).version == 1  # the plan has versions of its own
    assert action.version == 2 and action.created_by == WRITER.name
