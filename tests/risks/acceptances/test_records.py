"""The acceptance rules as plain functions on a real database: who counts as the same person, the cap as
configured, the notices of an acceptance in force, and decisions that cannot be rewritten."""

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.errors import Forbidden, Unprocessable
from riskops.notices.models import Notice
from riskops.risks import service as risks
from riskops.risks.acceptances import records, service
from riskops.risks.acceptances.models import AcceptanceExtension, AcceptanceRequest, Approval, Refusal
from riskops.risks.models import AcceptanceIn, Risk, RiskCreate, Treatment
from tests.conftest import ADMIN, SETTINGS, WRITER, FrozenClock
from tests.helpers import risk_body

# Ann signed in (a session), and Ann's own key: one person.
ANN_SIGNED_IN = Principal(key_id=-1_000_001, name="ann@example.org", role=Role.write, user_id=1)
ANN_OWN_KEY = Principal(key_id=41, name="ann@example.org (key ci-bot)", role=Role.admin, owner_id=1)
SERVICE_KEY = Principal(key_id=42, name="ops-bot", role=Role.admin)


def _risk(session: Session, **overrides: object) -> Risk:
    body = risk_body(inherent={"likelihood": 1, "impact": 2}, residual=None, **overrides)
    return risks.create_risk(session, RiskCreate.model_validate(body), WRITER, SETTINGS)


def _request(session: Session, clock: FrozenClock, risk: Risk, who: Principal, days: int = 90) -> int:
    data = AcceptanceRequest(risks=[risk.reference], justification="j", expires_at=clock.now + timedelta(days=days))
    return service.request(session, data, who, SETTINGS).id


def test_a_person_is_the_same_signed_in_or_by_their_own_key() -> None:
    assert records.identity(ANN_SIGNED_IN) == records.identity(ANN_OWN_KEY) == "user:1"
    assert records.identity(SERVICE_KEY) == "key:42" != records.identity(Principal(43, "x", Role.write))
    # No key at all (the command line, an import job): known by name, whatever its case.
    assert records.identity(ADMIN) == records.identity(Principal(0, " ALICE ", Role.admin)) == "name:alice"
    assert records.identity(WRITER) != records.identity(ADMIN)


def test_four_eyes_holds_across_a_persons_session_and_own_key(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _risk(session)
    acceptance = service.get(session, str(_request(session, frozen_clock, risk, ANN_SIGNED_IN)))
    with pytest.raises(Forbidden, match="Four eyes"):
        service.approve(session, acceptance, Approval(), ANN_OWN_KEY, SETTINGS)
    service.approve(session, acceptance, Approval(), SERVICE_KEY, SETTINGS)  # another key: another person
    assert (acceptance.status, risk.treatment, risk.acceptance_approver) == ("approved", "accept", "ops-bot")


def test_an_own_key_cannot_record_its_user_as_the_approver(session: Session, frozen_clock: FrozenClock) -> None:
    acceptance = AcceptanceIn(approver="Ann@Example.org", expires_at=frozen_clock.now + timedelta(days=9))
    with pytest.raises(Forbidden) as refused:
        records.inline_of(Treatment.accept, (None, None), acceptance, ANN_OWN_KEY, ("body",))
    assert refused.value.errors == [
        {"loc": ["body", "acceptance", "approver"], "field": "body.acceptance.approver",
         "message": "must name someone other than you"}
    ]  # fmt: skip
    assert records.inline_of(Treatment.accept, (None, None), acceptance, SERVICE_KEY, ())[0] == "Ann@Example.org"


def test_the_cap_follows_the_setting(session: Session, frozen_clock: FrozenClock) -> None:
    short = Settings(**{**SETTINGS.model_dump(), "acceptance_max_days": 30})
    risk = _risk(session)
    data = AcceptanceRequest(risks=[risk.reference], justification="j", expires_at=frozen_clock.now + timedelta(31))
    with pytest.raises(Unprocessable, match="at most 30 days"):
        service.request(session, data, WRITER, short)
    assert service.request(session, data.model_copy(update={"expires_at": frozen_clock.now + timedelta(30)}), WRITER,
                           short).status == "requested"  # fmt: skip
    assert Settings().acceptance_max_days == 365


def test_an_acceptance_in_force_has_its_two_notices_until_it_ends(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _risk(session)
    acceptance = service.get(session, str(_request(session, frozen_clock, risk, WRITER, days=90)))

    def pending() -> list[tuple[str, object]]:
        query = select(Notice.kind, Notice.due_at).where(
            Notice.subject_type == "acceptance", Notice.subject_id == acceptance.id, col(Notice.fired_at).is_(None)
        )
        return sorted(session.exec(query).all())

    assert pending() == []  # a request has no deadline of its own
    service.approve(session, acceptance, Approval(), ADMIN, SETTINGS)
    expiry = frozen_clock.now + timedelta(days=90)
    assert pending() == [("acceptance.expired", expiry), ("acceptance.expiring", expiry - timedelta(days=30))]
    service.revoke(session, acceptance, Refusal(comment="done"), ADMIN, SETTINGS)
    assert pending() == []


def test_decisions_and_states_cannot_be_rewritten(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _risk(session)
    acceptance = service.get(session, str(_request(session, frozen_clock, risk, WRITER)))
    service.approve(session, acceptance, Approval(comment="fine"), ADMIN, SETTINGS)
    session.commit()
    for statement in ("UPDATE acceptance_decision SET comment = 'rewritten'", "DELETE FROM acceptance_state"):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()
    assert [d.comment for d in service.decisions(session, acceptance.id)] == ["fine"]


def test_the_approvers_fit_the_risks_column() -> None:
    assert records.approvers_text(["bob", "carol", "bob"]) == "bob and carol"
    long = records.approvers_text(["a" * 150, "b" * 150])
    assert len(long) == 200 and long.endswith("…")


def test_an_extension_approved_after_its_acceptance_ended_stands_on_its_own(
    session: Session, frozen_clock: FrozenClock
) -> None:
    risk = _risk(session, treatment="transfer")
    old = service.get(session, str(_request(session, frozen_clock, risk, WRITER)))
    service.approve(session, old, Approval(), ADMIN, SETTINGS)
    extension = AcceptanceExtension(justification="j", expires_at=frozen_clock.now + timedelta(days=200))
    new = service.extend(session, old, extension, WRITER, SETTINGS)
    service.revoke(session, old, Refusal(comment="controls failed"), ADMIN, SETTINGS)
    assert (risk.treatment, risk.acceptance_approver) == ("transfer", None)
    service.approve(session, new, Approval(), ADMIN, SETTINGS)
    assert (old.status, new.status, risk.treatment) == ("revoked", "approved", "accept")
    assert risk.acceptance_expires_at == frozen_clock.now + timedelta(days=200)
    assert [c.treatment_before for c in records.covers(session, new.id)] == ["transfer"]
