"""Migration 0014 on both databases, from rows written under 0012: every risk's acceptance becomes an approved
acceptance record with its approver, expiry, who gave it and the risk's state; the risk's expiry notices become
the acceptance's, each still to fire once; the risks themselves are untouched."""

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from riskops import migrations
from riskops.config import Settings
from riskops.db import Database, UTCDateTime
from riskops.events.models import Event
from riskops.notices.models import Notice
from riskops.risks.acceptances.models import AcceptanceDecision, AcceptanceRecord, AcceptanceRisk, AcceptanceState
from riskops.risks.matrices.service import DEFAULT_MATRIX, load_spec_file
from riskops.risks.models import Risk
from riskops.worker import Worker
from tests.conftest import FrozenClock

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
IN_60_DAYS, LAPSED, LATER = NOW + timedelta(days=60), NOW - timedelta(days=16), NOW + timedelta(days=62)


def _insert(conn: sa.Connection, table: str, **values: Any) -> None:
    """A row as 0012's code wrote it: times through UTCDateTime (each database's own form), JSON as JSON."""

    def typed(name: str, value: Any) -> sa.ColumnClause[Any]:
        if isinstance(value, datetime):
            return sa.column(name, UTCDateTime)
        return sa.column(name, sa.JSON) if isinstance(value, dict) else sa.column(name)

    conn.execute(sa.table(table, *(typed(n, v) for n, v in values.items())).insert().values(values))


def _risk(conn: sa.Connection, risk_id: int, rating: tuple[int, int], level: str, **values: Any) -> None:
    likelihood, impact = rating
    row = {
        "id": risk_id, "title": f"Risk {risk_id}", "description": "", "category": "ops", "owner": "cto",
        "status": "open", "treatment": "accept", "matrix_version": 1, "inherent_likelihood": likelihood,
        "inherent_impact": impact, "inherent_score": likelihood * impact, "inherent_level": level,
        "score": likelihood * impact, "level": level, "acceptance_approver": None, "acceptance_expires_at": None,
        "created_at": NOW, "updated_at": NOW, "last_reviewed_at": NOW, "next_review_at": NOW + timedelta(days=90),
        "next_review_set_by_hand": False, "version": 3,
    }  # fmt: skip
    _insert(conn, "risk", **{**row, **values})


def _notice(conn: sa.Connection, kind: str, risk_id: int, ref: datetime, due: datetime, fired: bool) -> None:
    _insert(conn, "notice", kind=kind, subject_type="risk", subject_id=risk_id, ref=ref.isoformat(), due_at=due,
            data={}, fired_at=due if fired else None)  # fmt: skip


def _under_0012(engine: Engine) -> None:
    """Four risks: accepted (its acceptance given by ann, warning and expiry pending), accepted and lapsed (both
    notices fired), closed and accepted, and one not accepted; a category with limits of its own."""
    migrations.upgrade(engine, "0012")
    with engine.begin() as conn:
        spec = load_spec_file(DEFAULT_MATRIX).model_dump()
        _insert(conn, "risk_matrix", version=1, name="Default", spec=spec, published_at=NOW, published_by="system")
        _insert(conn, "category_appetite", category_key="cyber", category="Cyber", appetite="low",
                tolerance="medium", rationale="", set_by="alice", set_at=NOW, version=1)  # fmt: skip
        _risk(conn, 1, (3, 3), "medium", category="Cyber ", acceptance_approver="cfo",
              acceptance_expires_at=IN_60_DAYS, outside_appetite=True)  # fmt: skip
        _risk(conn, 2, (1, 2), "low", acceptance_approver="board", acceptance_expires_at=LAPSED)
        _risk(conn, 3, (1, 2), "low", status="closed", closed_at=NOW, closure_reason="gone",
              acceptance_approver="ciso", acceptance_expires_at=LATER)  # fmt: skip
        _risk(conn, 4, (3, 4), "high", treatment="mitigate")
        given = {"treatment": {"old": "mitigate", "new": "accept"}, "acceptance_approver": {"old": None, "new": "cfo"}}
        _insert(conn, "audit_entry", entity_type="risk", entity_id="1", action="updated", actor="ann",
                at=NOW - timedelta(days=30), changes=given, note=None)  # fmt: skip
        _insert(conn, "audit_entry", entity_type="risk", entity_id="1", action="assessed", actor="bob",
                at=NOW - timedelta(days=2), changes={"level": {"old": "low", "new": "medium"}}, note=None)  # fmt: skip
        _notice(conn, "risk.acceptance_expiring", 1, IN_60_DAYS, IN_60_DAYS - timedelta(days=30), fired=False)
        _notice(conn, "risk.acceptance_expired", 1, IN_60_DAYS, IN_60_DAYS, fired=False)
        _notice(conn, "risk.review_due", 1, NOW + timedelta(days=90), NOW + timedelta(days=76), fired=False)
        _notice(conn, "risk.acceptance_expiring", 2, LAPSED, LAPSED - timedelta(days=30), fired=True)
        _notice(conn, "risk.acceptance_expired", 2, LAPSED, LAPSED, fired=True)


def _rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


def test_every_risk_acceptance_becomes_an_approved_record(empty_engine: Engine, frozen_clock: FrozenClock) -> None:
    _under_0012(empty_engine)
    risks_before = _rows(empty_engine, "risk")
    migrations.upgrade(empty_engine)
    # Every risk as it was, its acceptance columns too (later migrations' columns, such as 0017's kri_status, come
    # after them).
    assert [row[: len(risks_before[0])] for row in _rows(empty_engine, "risk")] == risks_before
    with Session(empty_engine) as session:
        records = {
            cover.risk_id: record
            for record, cover in session.exec(select(AcceptanceRecord, AcceptanceRisk).join(AcceptanceRisk))
        }
        assert sorted(records) == [1, 2, 3]
        first = records[1]
        assert (first.status, first.recorded, first.needs_reapproval, first.expires_at) == (
            "approved", True, False, IN_60_DAYS
        )  # fmt: skip
        assert (first.requested_by, first.requested_at, first.approved_at) == ("ann", NOW - timedelta(days=30),
                                                                               NOW - timedelta(days=30))  # fmt: skip
        assert "migrated" in first.justification and "'mitigate' is assumed" in first.justification
        assert records[3].requested_by == "riskops migration 0014"  # no history entry gave it: who is unknown
        (decision,) = session.exec(select(AcceptanceDecision).where(AcceptanceDecision.acceptance_id == first.id))
        assert (decision.kind, decision.decided_by, decision.recorded_by) == ("approve", "cfo", "ann")
        states = {s.risk_id: s for s in session.exec(select(AcceptanceState))}
        assert (states[1].level, states[1].category, states[1].matrix_version, states[1].inherent_score) == (
            "medium", "Cyber ", 1, 9
        )  # fmt: skip
        assert (states[1].appetite, states[1].tolerance, states[1].outside_appetite) == ("low", "medium", True)
        assert (states[2].appetite, states[2].outside_appetite, states[3].status) == ("medium", False, "closed")
        assert {c.treatment_before for c in session.exec(select(AcceptanceRisk))} == {"mitigate"}

        notices = session.exec(select(Notice).order_by(col(Notice.kind), col(Notice.subject_id))).all()
        pending = {(n.kind, n.subject_type, n.subject_id, n.due_at, str(n.data)) for n in notices if not n.fired_at}
        assert pending == {
            ("acceptance.expiring", "acceptance", first.id, IN_60_DAYS - timedelta(days=30), "{}"),
            ("acceptance.expired", "acceptance", first.id, IN_60_DAYS, "{}"),
            ("acceptance.expired", "acceptance", records[2].id, LAPSED, "{'risk_events': False}"),
            ("acceptance.expired", "acceptance", records[3].id, LATER, "{}"),
            ("risk.review_due", "risk", 1, NOW + timedelta(days=76), "{}"),
        }
        assert sum(n.fired_at is not None for n in notices) == 2  # what fired stays the record of it

    # The lapsed acceptance ends at the first tick, without announcing its end on the risk a second time.
    Worker(Database(empty_engine), Settings(smtp_host=None)).tick()
    with Session(empty_engine) as session:
        lapsed = session.get(Risk, 2)
        assert lapsed is not None and (lapsed.treatment, lapsed.acceptance_approver) == ("mitigate", None)
        assert lapsed.next_review_at == NOW  # to be reassessed
        types = [e.type for e in session.exec(select(Event))]
        assert "acceptance.expired" in types and "risk.acceptance_expired" not in types
        assert session.get(AcceptanceRecord, records[1].id).status == "approved"  # type: ignore[union-attr]


def test_a_downgrade_gives_the_risks_their_own_notices_back(empty_engine: Engine, frozen_clock: FrozenClock) -> None:
    _under_0012(empty_engine)
    migrations.upgrade(empty_engine)
    migrations.downgrade(empty_engine, "0012")
    with empty_engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert not {"acceptance", "acceptance_risk", "acceptance_decision", "acceptance_state"} & tables
        kinds = conn.execute(
            text("SELECT kind, subject_id FROM notice WHERE fired_at IS NULL ORDER BY kind, subject_id")
        ).all()
    # Risk 1 open and accepted: its warning and expiry again; risk 2 lapsed and fired; risk 3 closed.
    assert [tuple(k) for k in kinds] == [
        ("risk.acceptance_expired", 1), ("risk.acceptance_expiring", 1), ("risk.review_due", 1)
    ]  # fmt: skip
    migrations.upgrade(empty_engine)
    with Session(empty_engine) as session:
        assert len(session.exec(select(AcceptanceRecord)).all()) == 3
