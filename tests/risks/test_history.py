"""A risk's history replayed: the audited fields as declared, recorded by every command, and read back."""

from datetime import date, timedelta

from sqlmodel import Session, col, select

from riskops.audit.models import AuditEntry
from riskops.risks import applied_controls, history, service
from riskops.risks.appetite import service as appetite
from riskops.risks.appetite.models import AppetiteIn
from riskops.risks.library import ControlCreate, ControlStatus, ControlUpdate
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import (
    AcceptanceIn,
    AssessmentCreate,
    RiskCreate,
    RiskType,
    RiskUpdate,
    StatusChange,
    Treatment,
)
from riskops.risks.ratings import Rating, TargetRating
from tests.conftest import ADMIN, SETTINGS, WRITER, FrozenClock
from tests.helpers import risk_body


def test_the_replayed_history_is_the_risk_as_it_stands(session: Session, frozen_clock: FrozenClock) -> None:
    """Every audited field is changed through the commands; replaying the trail gives what `record` diffs."""
    risk = service.create_risk(session, RiskCreate.model_validate(risk_body(residual=None)), WRITER, SETTINGS)
    created, created_at = history.risk_state(risk), frozen_clock.now
    step = timedelta(days=1)

    frozen_clock.advance(step)
    edit = RiskUpdate(
        title="Both data centres flooded", description="The river takes out both sites.", category="resilience",
        owner="cto", tags=["flood"], next_review_at=frozen_clock.now + timedelta(days=10), cause="a wet winter",
        event="the river floods both sites", consequence="a week without billing", source="weather",
        objectives=["billing"], target=TargetRating(likelihood=1, impact=1, date=date(2027, 3, 31)),
    )  # fmt: skip
    service.update_risk(session, risk, edit, WRITER, SETTINGS)
    appetite.set_limits(session, "Resilience", AppetiteIn(appetite="medium", tolerance="medium"), ADMIN, SETTINGS)
    frozen_clock.advance(step)
    rated = AssessmentCreate(
        inherent=Rating.model_validate({"likelihood": 2, "impacts": {"financial": 3}}),
        residual=Rating.model_validate({"likelihood": 1, "impacts": {"operational": 2}}),
        rationale="defences built",
    )
    service.assess_risk(session, risk, rated, WRITER, SETTINGS)
    acceptance = AcceptanceIn(approver="cfo", expires_at=frozen_clock.now + timedelta(days=90))
    service.update_risk(session, risk, RiskUpdate(treatment=Treatment.accept, acceptance=acceptance), WRITER, SETTINGS)
    frozen_clock.advance(step)
    worse = AssessmentCreate(residual=Rating(likelihood=4, impact=4), rationale="defences failed")
    service.assess_risk(session, risk, worse, WRITER, SETTINGS)  # a material change: the acceptance stays, marked
    service.update_risk(session, risk, RiskUpdate(treatment=Treatment.mitigate), WRITER, SETTINGS)  # and leaves it
    assert risk.acceptance_approver is None
    spec = matrices.current(session).parsed().model_dump()
    matrices.publish(session, MatrixSpec.model_validate({**spec, "name": "Default, again"}), actor="alice")
    frozen_clock.advance(step)
    service.assess_risk(session, risk, AssessmentCreate(rationale="onto the new matrix"), ADMIN, SETTINGS)
    control = applied_controls.add_control(
        session, risk, ControlCreate(title="Flood barrier", owner="facilities"), WRITER, SETTINGS
    )
    under_way = ControlUpdate(status=ControlStatus.in_progress, due_date=date(2026, 9, 30))
    applied_controls.update_control(session, risk, control.id, under_way, WRITER, SETTINGS)
    frozen_clock.advance(step)
    service.mark_materialised(session, risk, "INC-0001: Flood", WRITER, SETTINGS)
    service.change_status(session, risk, "close", StatusChange(reason="sites moved"), WRITER, SETTINGS)
    frozen_clock.advance(step)
    service.change_status(session, risk, "reopen", StatusChange(reason="sites kept"), WRITER, SETTINGS)
    service.update_risk(session, risk, RiskUpdate(type=RiskType.opportunity), WRITER, SETTINGS)
    session.commit()

    changed = session.exec(
        select(AuditEntry).where(AuditEntry.entity_type == "risk", col(AuditEntry.action) != "created")
    ).all()
    assert {*history.AUDITED, "tags"} <= {key for entry in changed for key in entry.changes}, "a field is never changed"
    replayed = history.states_as_of(session, frozen_clock.now)[risk.id]
    assert replayed.state == history.risk_state(risk)
    assert replayed.controls == {str(c.id): history.control_state(c) for c in risk.controls}
    # As the risk was created: a creation records no empty field.
    assert history.states_as_of(session, created_at)[risk.id] == history.RiskAsOf(
        state={name: value for name, value in created.items() if value is not None}, controls={}
    )
