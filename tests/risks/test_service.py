"""The register's rules, called as plain functions on a real database (SQLite and PostgreSQL)."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from riskops.audit.models import AuditEntry
from riskops.db import Database
from riskops.errors import Conflict, Forbidden, InvalidTransition, Unprocessable
from riskops.events.models import Event
from riskops.risks import queries, service
from riskops.risks.acceptances.models import AcceptanceRecord, AcceptanceRisk
from riskops.risks.matrices import adoption
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec, RiskMatrix
from riskops.risks.matrices.service import BUILTIN_MATRICES, load_spec_file
from riskops.risks.models import (
    Acceptance,
    AcceptanceIn,
    AssessmentCreate,
    Risk,
    RiskAssessment,
    RiskCreate,
    RiskUpdate,
    StatusChange,
)
from riskops.risks.presentation import present
from riskops.risks.ratings import Rating
from riskops.risks.scoring import is_overdue
from tests.conftest import ADMIN, SETTINGS, WRITER, FrozenClock
from tests.helpers import risk_body


def _create(session: Session, **overrides: Any) -> Risk:
    risk = service.create_risk(session, RiskCreate.model_validate(risk_body(**overrides)), WRITER, settings=SETTINGS)
    session.commit()
    return risk


def test_create_scores_both_assessments_and_schedules_the_review(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _create(session)
    assert (risk.inherent_score, risk.inherent_level) == (15, "high")
    assert (risk.residual_score, risk.residual_level) == (8, "medium")
    assert (risk.score, risk.level) == (8, "medium")  # the current rating is the residual one
    assert risk.reference == f"R-{risk.id:04d}"
    assert risk.next_review_at == frozen_clock.now + timedelta(days=180)
    assert risk.tags == ["dc", "facilities"]
    history = session.exec(select(RiskAssessment).where(RiskAssessment.risk_id == risk.id)).all()
    assert [(a.kind, a.inherent_score, a.residual_score, a.matrix_version) for a in history] == [("initial", 15, 8, 1)]


def test_reassessment_changes_level_history_and_review_date(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _create(session, residual=None)
    assert risk.level == "high" and risk.next_review_at == frozen_clock.now + timedelta(days=90)
    later = frozen_clock.advance(timedelta(days=10))
    service.assess_risk(
        session,
        risk,
        AssessmentCreate(inherent=Rating(likelihood=5, impact=5), rationale="flood defences failed"),
        WRITER,
        settings=SETTINGS,
    )
    session.commit()
    assert (risk.level, risk.score) == ("critical", 25)
    assert risk.last_reviewed_at == later
    assert risk.next_review_at == later + timedelta(days=30)
    rows, _ = queries.list_assessments(session, risk)
    assert [(a.kind, a.inherent_level) for a in rows] == [("reassessment", "critical"), ("initial", "high")]
    assert rows[0].assessed_by == WRITER.name and rows[0].rationale == "flood defences failed"


def test_hand_set_review_date_survives_edits_until_the_next_review(session: Session, frozen_clock: FrozenClock) -> None:
    by_hand = frozen_clock.now + timedelta(days=14)
    risk = _create(session, next_review_at=by_hand.isoformat())
    assert risk.next_review_at == by_hand and risk.next_review_set_by_hand
    service.update_risk(
        session, risk, RiskUpdate(title="Flood of the primary site", owner="facilities"), WRITER, settings=SETTINGS
    )
    service.update_risk(session, risk, RiskUpdate(treatment="transfer"), WRITER, settings=SETTINGS)
    session.commit()
    assert risk.next_review_at == by_hand, "an edit of other fields must not overwrite a date set by hand"
    frozen_clock.advance(timedelta(days=3))
    service.assess_risk(session, risk, AssessmentCreate(rationale="reviewed as asked"), WRITER, settings=SETTINGS)
    assert not risk.next_review_set_by_hand
    assert risk.next_review_at == frozen_clock.now + timedelta(days=180)


def test_clearing_a_hand_set_date_goes_back_to_the_interval(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _create(session, next_review_at=(frozen_clock.now + timedelta(days=3)).isoformat())
    service.update_risk(session, risk, RiskUpdate.model_validate({"next_review_at": None}), WRITER, settings=SETTINGS)
    assert risk.next_review_at == risk.last_reviewed_at + timedelta(days=180)


def test_overdue_when_the_date_passes(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _create(session)
    assert not is_overdue(risk.status, risk.next_review_at, frozen_clock.now)
    frozen_clock.advance(timedelta(days=181))
    assert present(risk).overdue
    rows, _ = queries.list_risks(session, queries.RiskFilter(overdue=True))
    assert [r.id for r in rows] == [risk.id]


def test_acceptance_needs_approver_and_future_expiry(session: Session, frozen_clock: FrozenClock) -> None:
    with pytest.raises(Unprocessable, match="approver and an expiry"):
        _create(session, treatment="accept", residual={"likelihood": 1, "impact": 2})
    past = {"approver": "cfo", "expires_at": (frozen_clock.now - timedelta(days=1)).isoformat()}
    with pytest.raises(Unprocessable, match="future"):
        _create(session, treatment="accept", residual={"likelihood": 1, "impact": 2}, acceptance=past)
    soon = frozen_clock.now + timedelta(days=30)
    risk = _create(
        session, treatment="accept", residual={"likelihood": 1, "impact": 2},
        acceptance={"approver": "cfo", "expires_at": soon.isoformat()},
    )  # fmt: skip
    assert present(risk).acceptance == Acceptance(approver="cfo", expires_at=soon, expired=False)
    frozen_clock.advance(timedelta(days=31))
    assert present(risk).acceptance == Acceptance(approver="cfo", expires_at=soon, expired=True)


def test_above_appetite_only_an_admin_may_accept(session: Session, frozen_clock: FrozenClock) -> None:
    acceptance = {"approver": "board", "expires_at": (frozen_clock.now + timedelta(days=90)).isoformat()}
    data = RiskCreate.model_validate(risk_body(residual=None, treatment="accept", acceptance=acceptance))
    with pytest.raises(Forbidden, match="appetite"):
        service.create_risk(session, data, WRITER, settings=SETTINGS)
    risk = service.create_risk(session, data, ADMIN, settings=SETTINGS)
    assert risk.level == "high" and risk.acceptance_approver == "board"


def test_moving_away_from_accept_clears_the_acceptance(session: Session, frozen_clock: FrozenClock) -> None:
    acceptance = {"approver": "cfo", "expires_at": (frozen_clock.now + timedelta(days=9)).isoformat()}
    risk = _create(session, treatment="accept", residual={"likelihood": 1, "impact": 1}, acceptance=acceptance)
    service.update_risk(session, risk, RiskUpdate(treatment="mitigate"), WRITER, settings=SETTINGS)
    assert risk.acceptance_approver is None and risk.acceptance_expires_at is None
    with pytest.raises(Unprocessable, match="only to treatment 'accept'"):
        service.update_risk(
            session, risk, RiskUpdate(acceptance=AcceptanceIn.model_validate(acceptance)), WRITER, settings=SETTINGS
        )


def test_scores_outside_the_matrix_are_refused(session: Session) -> None:
    with pytest.raises(Unprocessable) as caught:
        _create(session, inherent={"likelihood": 7, "impact": 6})
    assert [e["field"] for e in caught.value.errors or []] == ["body.inherent.likelihood", "body.inherent.impact"]


def test_close_and_reopen_follow_the_allowed_moves(session: Session) -> None:
    risk = _create(session)
    service.change_status(session, risk, "close", StatusChange(reason="site sold"), WRITER, settings=SETTINGS)
    assert risk.status == "closed" and risk.closure_reason == "site sold"
    with pytest.raises(InvalidTransition) as caught:
        service.change_status(session, risk, "close", StatusChange(reason="again"), WRITER, settings=SETTINGS)
    assert caught.value.extra["allowed"] == ["reopen"]
    with pytest.raises(InvalidTransition):
        service.assess_risk(session, risk, AssessmentCreate(rationale="closed"), WRITER, settings=SETTINGS)
    service.change_status(session, risk, "reopen", StatusChange(reason="site kept"), WRITER, settings=SETTINGS)
    assert risk.status == "open" and risk.closed_at is None


def _publish_nist(session: Session) -> RiskMatrix:
    matrix = matrices.publish(session, load_spec_file(BUILTIN_MATRICES["nist-sp800-30"]), actor="alice")
    session.commit()
    return matrix


def test_publishing_a_matrix_never_rescores_silently(session: Session) -> None:
    risk = _create(session, inherent={"likelihood": 1, "impact": 5}, residual=None)
    assert risk.level == "medium"
    nist = _publish_nist(session)
    assert nist.version == 2
    session.refresh(risk)
    assert (risk.level, risk.matrix_version) == ("medium", 1)


def test_rescore_moves_risks_with_a_recorded_reassessment(session: Session) -> None:
    risk = _create(session, inherent={"likelihood": 1, "impact": 5}, residual=None)
    nist = _publish_nist(session)
    result = adoption.rescore_all(session, nist, "adopting NIST SP 800-30", ADMIN, settings=SETTINGS)
    session.commit()
    assert result.rescored == 1
    assert result.level_changes == [{"risk": risk.reference, "old_level": "medium", "new_level": "low"}]
    rows, _ = queries.list_assessments(session, risk)
    assert [(a.kind, a.matrix_version, a.inherent_level) for a in rows] == [
        ("rescore", 2, "low"),
        ("initial", 1, "medium"),
    ]


def test_rescore_is_all_or_nothing_when_scales_shrink(session: Session) -> None:
    fits = _create(session, inherent={"likelihood": 2, "impact": 2}, residual=None)
    misfit = _create(session, inherent={"likelihood": 5, "impact": 5}, residual=None)
    spec = (
        load_spec_file(BUILTIN_MATRICES["default"])
        .model_copy(update={"name": "3x3", "likelihood": [], "impact": [], "cells": []})
        .model_dump()
    )
    spec.update(
        likelihood=[{"value": v, "name": str(v)} for v in (1, 2, 3)],
        impact=[{"value": v, "name": str(v)} for v in (1, 2, 3)],
        cells=[["low", "low", "medium"], ["low", "medium", "high"], ["medium", "high", "critical"]],
        impact_criteria=[],
    )
    small = matrices.publish(session, MatrixSpec.model_validate(spec), actor="alice")
    session.commit()
    with pytest.raises(Conflict) as caught:
        adoption.rescore_all(session, small, "adopt 3x3", ADMIN, settings=SETTINGS)
    session.rollback()
    assert [e["field"] for e in caught.value.errors or []] == [f"risks.{misfit.reference}"]
    session.refresh(fits)
    assert fits.matrix_version == 1


def test_concurrent_reassessments_are_serialised_not_lost(engine: Engine, session: Session) -> None:
    """Eight writers reassess one risk at once: each gets its turn, none is lost, none fails."""
    risk_id = _create(session).id
    database = Database(engine)

    def reassess(n: int) -> None:
        with database.write() as uow:
            risk = service.get_risk(uow, risk_id, for_update=True)
            service.assess_risk(
                uow,
                risk,
                AssessmentCreate(residual=Rating(likelihood=1 + n % 5, impact=2), rationale=f"w{n}"),
                WRITER,
                settings=SETTINGS,
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(reassess, range(8)))
    with Session(engine) as fresh:
        risk = service.get_risk(fresh, risk_id)
        rows, _ = queries.list_assessments(fresh, risk)
    assert risk.version == 9
    assert len(rows) == 9 and {a.rationale for a in rows[:8]} == {f"w{n}" for n in range(8)}


def test_owner_and_category_filters_are_answered_by_the_lower_indexes(engine: Engine, session: Session) -> None:
    _create(session)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "lower(risk." in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        queries.list_risks(session, queries.RiskFilter(owner=[" Head of Infrastructure"]))
        queries.list_risks(session, queries.RiskFilter(category=["OPERATIONAL"], level=["medium", "high"]))
        rows, _ = queries.list_risks(session, queries.RiskFilter(owner=["cto", "HEAD OF INFRASTRUCTURE"]))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(rows) == 1
    sqlite = engine.dialect.name == "sqlite"
    if not sqlite:  # a one-row table is scanned whatever the indexes; ask whether the index can serve at all
        session.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
    explain = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN"
    plans = [
        " ".join(str(row[-1]) for row in session.connection().exec_driver_sql(f"{explain} {sql}", params))
        for sql, params in statements
    ]
    assert len(plans) == 3
    for plan, index in zip(plans, ("owner", "category", "owner"), strict=True):
        assert f"ix_risk_{index}_ci_score" in plan, plan
    if sqlite:  # one owner: the index gives the default order as well, with no sort
        assert "TEMP B-TREE" not in plans[0], plans[0]
    session.rollback()


def _accepted(session: Session, frozen_clock: FrozenClock, **overrides: Any) -> Risk:
    acceptance = {"approver": "cfo", "expires_at": (frozen_clock.now + timedelta(days=90)).isoformat()}
    values = {"residual": {"likelihood": 1, "impact": 2}, "treatment": "accept", "acceptance": acceptance, **overrides}
    return _create(session, **values)


def _recorded(session: Session, risk: Risk) -> AcceptanceRecord:
    """The acceptance recorded for the risk's inline acceptance."""
    query = select(AcceptanceRecord).join(AcceptanceRisk).where(AcceptanceRisk.risk_id == risk.id)
    return session.exec(query).one()


def test_marking_an_acceptance_for_reapproval_is_part_of_the_callers_transaction(
    session: Session, frozen_clock: FrozenClock
) -> None:
    """(Before acceptances were records, a writer's reassessment above the appetite voided the acceptance.)"""
    risk = _accepted(session, frozen_clock)
    entries = len(session.exec(select(AuditEntry)).all())
    # what a review's reassessment calls
    service.assess_risk(
        session,
        risk,
        AssessmentCreate(residual=Rating(likelihood=5, impact=5), rationale="r"),
        WRITER,
        settings=SETTINGS,
    )
    session.flush()
    assert (risk.treatment, risk.acceptance_approver, risk.level) == ("accept", "cfo", "critical")
    assert _recorded(session, risk).needs_reapproval
    assert session.exec(select(Event).where(Event.type == "acceptance.needs_reapproval")).all()
    session.rollback()
    session.refresh(risk)
    assert (risk.treatment, risk.acceptance_approver, risk.level) == ("accept", "cfo", "low")
    assert not _recorded(session, risk).needs_reapproval
    assert not session.exec(select(Event).where(Event.type == "acceptance.needs_reapproval")).all()
    assert len(session.exec(select(AuditEntry)).all()) == entries


def test_moving_an_accepted_risk_onto_another_matrix_marks_its_acceptance_for_reapproval(
    session: Session, frozen_clock: FrozenClock
) -> None:
    risk = _accepted(session, frozen_clock, residual={"likelihood": 1, "impact": 5})
    assert risk.level == "medium"
    spec = matrices.current(session).parsed().model_dump()
    spec["name"], spec["cells"][0][4] = "Stricter", "high"
    matrices.publish(session, MatrixSpec.model_validate(spec), actor="alice")
    service.assess_risk(session, risk, AssessmentCreate(rationale="same scores, new matrix"), WRITER, settings=SETTINGS)
    assert (risk.matrix_version, risk.level, risk.treatment) == (2, "high", "accept")
    assert _recorded(session, risk).needs_reapproval


def test_an_admin_rescore_keeps_acceptances(session: Session, frozen_clock: FrozenClock) -> None:
    risk = _accepted(session, frozen_clock, residual={"likelihood": 1, "impact": 5})
    spec = matrices.current(session).parsed().model_dump()
    spec["name"], spec["cells"][0][4] = "Stricter", "high"
    stricter = matrices.publish(session, MatrixSpec.model_validate(spec), actor="alice")
    result = adoption.rescore_all(session, stricter, "new method", ADMIN, settings=SETTINGS)
    assert (risk.level, risk.treatment, risk.acceptance_approver) == ("high", "accept", "cfo")
    assert result.accepted_above_appetite == [risk.reference]
    assert _recorded(session, risk).needs_reapproval  # a new matrix is a material change, whoever adopts it
