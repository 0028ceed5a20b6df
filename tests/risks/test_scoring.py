"""The overdue rule: the Python form and the SQL form select the same risks on a real database."""

from datetime import timedelta

from sqlmodel import Session, select

from riskops.risks import queries, service
from riskops.risks.models import Risk, RiskCreate, StatusChange
from riskops.risks.scoring import is_overdue, overdue_clause
from tests.conftest import SETTINGS, WRITER, FrozenClock
from tests.helpers import risk_body


def test_the_sql_clause_selects_the_risks_is_overdue_names(session: Session, frozen_clock: FrozenClock) -> None:
    now, tick = frozen_clock.now, timedelta(microseconds=1)
    reviews = [now - timedelta(days=1), now - tick, now, now + tick, now + timedelta(days=1)]
    for review in reviews:
        for closed in (False, True):
            body = risk_body(title=f"Due {review.isoformat()}", next_review_at=review.isoformat())
            risk = service.create_risk(session, RiskCreate.model_validate(body), WRITER, SETTINGS)
            if closed:
                service.change_status(session, risk, "close", StatusChange(reason="gone"), WRITER, SETTINGS)
    session.commit()
    risks = session.exec(select(Risk)).all()
    every = {r.id for r in risks}
    for moment in [now - timedelta(days=2), *reviews, now + timedelta(days=2)]:
        expected = {r.id for r in risks if is_overdue(r.status, r.next_review_at, moment)}
        assert set(session.exec(select(Risk.id).where(overdue_clause(moment)))) == expected, moment
        assert set(session.exec(select(Risk.id).where(~overdue_clause(moment)))) == every - expected, moment
    assert len({r.id for r in risks if is_overdue(r.status, r.next_review_at, now)}) == 2  # open, date passed
    # The list filter is the same rule, at the present moment.
    overdue, _ = queries.list_risks(session, queries.RiskFilter(overdue=True))
    on_time, _ = queries.list_risks(session, queries.RiskFilter(overdue=False))
    assert {r.id for r in overdue} == {r.id for r in risks if is_overdue(r.status, r.next_review_at, now)}
    assert {r.id for r in on_time} == every - {r.id for r in overdue}


def test_a_risk_with_no_review_date_is_not_overdue(frozen_clock: FrozenClock) -> None:
    assert not is_overdue("open", None, frozen_clock.now)
    assert is_overdue("open", frozen_clock.now - timedelta(seconds=1), frozen_clock.now)
    assert not is_overdue("closed", frozen_clock.now - timedelta(seconds=1), frozen_clock.now)
