"""The register's deadlines, driven by a frozen clock and hand-cranked ticks: review reminders and overdue
reviews, acceptance expiry, the quarterly kick-off, exactly-once firing across workers, and the due-notice index."""

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, insert, text
from sqlmodel import Session

from riskops.config import Settings
from riskops.db import Database
from riskops.notices.models import Notice
from riskops.notices.service import claim_due
from riskops.worker import NOTICE_BATCH, PERIODIC_JOBS, Worker
from tests.conftest import FrozenClock
from tests.helpers import risk_body

REVIEW_DUE, REVIEW_OVERDUE = "risk.review_due", "risk.review_overdue"
EXPIRING, EXPIRED = "risk.acceptance_expiring", "risk.acceptance_expired"
SECOND = timedelta(seconds=1)
PLUS_TWO = timezone(timedelta(hours=2))


def events(client: TestClient, event_type: str, subject: str | None = None) -> list[dict[str, Any]]:
    """Every event of one type (optionally about one subject), oldest first."""
    params: dict[str, Any] = {"type": event_type, "limit": 1000}
    if subject is not None:
        params["subject"] = subject
    response = client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    assert response.json()["next_cursor"] is None, "more events than one page: the test would undercount"
    return items


def review_events(client: TestClient, reference: str) -> list[tuple[str, datetime]]:
    """(type, review date) of every review notice about a risk, in the order they fired."""
    found = events(client, "risk.review_*", reference)
    return [(e["type"], at(e["data"]["due_at"])) for e in found]


def create_risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def tick_until(worker: Worker, clock: FrozenClock, moment: datetime, times: int = 1) -> None:
    """Move the clock to `moment` and tick (several times, to show that repeats add nothing)."""
    clock.advance(moment - clock.now)
    for _ in range(times):
        report = worker.tick()
        assert -1 not in report.values(), report


# ---- reviews ----


def test_review_reminder_then_overdue_fire_once_each_at_their_times(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    risk = create_risk(client)
    ref, review = risk["reference"], at(risk["next_review_at"])
    assert risk["level"] == "medium" and review == start + timedelta(days=180)
    reminder = review - timedelta(days=14)

    tick_until(worker, frozen_clock, start, times=2)
    tick_until(worker, frozen_clock, start + timedelta(days=100))
    tick_until(worker, frozen_clock, reminder - SECOND)
    assert review_events(client, ref) == []

    tick_until(worker, frozen_clock, reminder + SECOND, times=3)
    assert review_events(client, ref) == [(REVIEW_DUE, review)]
    (due,) = events(client, REVIEW_DUE, ref)
    assert due["data"]["reference"] == ref and at(due["data"]["next_review_at"]) == review

    tick_until(worker, frozen_clock, review - SECOND, times=2)
    assert review_events(client, ref) == [(REVIEW_DUE, review)]

    tick_until(worker, frozen_clock, review)  # due exactly now: fires
    assert review_events(client, ref) == [(REVIEW_DUE, review), (REVIEW_OVERDUE, review)]

    for days in (1, 30, 400):
        tick_until(worker, frozen_clock, review + timedelta(days=days), times=2)
    assert review_events(client, ref) == [(REVIEW_DUE, review), (REVIEW_OVERDUE, review)]


def test_catch_up_after_a_long_gap_fires_each_missed_notice_exactly_once(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = create_risk(client)
    review = at(risk["next_review_at"])

    frozen_clock.advance(timedelta(days=400))  # the scheduler was down through both dates
    report = worker.tick()
    assert report["notices"] == 3, report  # both review notices, and the check that the new owner was asked
    assert review_events(client, risk["reference"]) == [(REVIEW_DUE, review), (REVIEW_OVERDUE, review)]

    for _ in range(3):
        assert worker.tick()["notices"] == 0
    assert review_events(client, risk["reference"]) == [(REVIEW_DUE, review), (REVIEW_OVERDUE, review)]


def test_reassessing_before_the_reminder_moves_both_notices_to_the_new_date(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    risk = create_risk(client)
    ref, old_review = risk["reference"], at(risk["next_review_at"])

    tick_until(worker, frozen_clock, start + timedelta(days=100))
    assessed = client.post(f"/api/v1/risks/{ref}/assessments", json={"rationale": "Quarterly review, unchanged"})
    assert assessed.status_code == 201, assessed.text
    new_review = at(client.get(f"/api/v1/risks/{ref}").json()["next_review_at"])
    assert new_review == frozen_clock.now + timedelta(days=180) != old_review

    # Through the old reminder and the old review date: nothing about the old date, nothing yet about the new one.
    for moment in (old_review - timedelta(days=14), old_review, old_review + timedelta(days=20)):
        tick_until(worker, frozen_clock, moment + SECOND, times=2)
    assert review_events(client, ref) == []

    tick_until(worker, frozen_clock, new_review - timedelta(days=14), times=2)
    assert review_events(client, ref) == [(REVIEW_DUE, new_review)]
    tick_until(worker, frozen_clock, new_review + timedelta(days=1), times=2)
    assert review_events(client, ref) == [
        (REVIEW_DUE, new_review),
        (REVIEW_OVERDUE, new_review),
    ]


def test_reassessing_after_the_reminder_drops_the_old_overdue_notice(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    risk = create_risk(client)
    ref, old_review = risk["reference"], at(risk["next_review_at"])

    tick_until(worker, frozen_clock, start + timedelta(days=170))
    assert review_events(client, ref) == [(REVIEW_DUE, old_review)]
    assessed = client.post(f"/api/v1/risks/{ref}/assessments", json={"rationale": "Reviewed after the reminder"})
    assert assessed.status_code == 201, assessed.text
    new_review = frozen_clock.now + timedelta(days=180)

    tick_until(worker, frozen_clock, old_review + timedelta(days=1), times=2)
    assert review_events(client, ref) == [(REVIEW_DUE, old_review)]  # no overdue for the old date

    tick_until(worker, frozen_clock, new_review + SECOND, times=2)
    assert review_events(client, ref) == [
        (REVIEW_DUE, old_review),
        (REVIEW_DUE, new_review),
        (REVIEW_OVERDUE, new_review),
    ]


def test_a_closed_risk_gets_no_review_notices(client: TestClient, worker: Worker, frozen_clock: FrozenClock) -> None:
    closed = create_risk(client, title="Retired mainframe fails")
    still_open = create_risk(client, title="Primary data centre flooded")
    response = client.post(f"/api/v1/risks/{closed['reference']}/close", json={"reason": "Mainframe decommissioned"})
    assert response.status_code == 200, response.text

    tick_until(worker, frozen_clock, frozen_clock.now + timedelta(days=400), times=2)
    assert review_events(client, closed["reference"]) == []
    assert [t for t, _ in review_events(client, still_open["reference"])] == [REVIEW_DUE, REVIEW_OVERDUE]


# ---- acceptance ----


def accepted_risk(client: TestClient, expires_at: str) -> dict[str, Any]:
    return create_risk(
        client,
        title="Legacy VPN concentrator out of support",
        residual={"likelihood": 1, "impact": 2},
        treatment="accept",
        acceptance={"approver": "chief risk officer", "expires_at": expires_at},
    )


def check_acceptance_notices(
    client: TestClient, worker: Worker, clock: FrozenClock, risk: dict[str, Any], expiry: datetime
) -> None:
    ref = risk["reference"]
    warning = expiry - timedelta(days=30)

    def fired() -> list[str]:
        return [e["type"] for e in events(client, "risk.acceptance_*", ref)]

    tick_until(worker, clock, warning - SECOND, times=2)
    assert fired() == []
    tick_until(worker, clock, warning, times=3)
    assert fired() == [EXPIRING]
    tick_until(worker, clock, expiry - SECOND, times=2)
    assert fired() == [EXPIRING]
    tick_until(worker, clock, expiry, times=3)
    assert fired() == [EXPIRING, EXPIRED]
    (expired,) = events(client, EXPIRED, ref)
    assert at(expired["data"]["acceptance_expires_at"]) == expiry
    tick_until(worker, clock, expiry + timedelta(days=90), times=2)
    assert fired() == [EXPIRING, EXPIRED]


def test_acceptance_expiring_and_expired_fire_once_each(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    expiry = frozen_clock.now + timedelta(days=60)
    risk = accepted_risk(client, expiry.isoformat())
    assert risk["level"] == "low" and risk["treatment"] == "accept"
    assert at(risk["acceptance"]["expires_at"]) == expiry
    check_acceptance_notices(client, worker, frozen_clock, risk, expiry)


def test_acceptance_notices_fire_when_the_expiry_was_given_with_a_non_utc_offset(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    """The same instant written as 11:00+02:00 instead of 09:00Z must behave identically."""
    expiry = frozen_clock.now + timedelta(days=60)
    risk = accepted_risk(client, expiry.astimezone(PLUS_TWO).isoformat())
    assert at(risk["acceptance"]["expires_at"]) == expiry
    check_acceptance_notices(client, worker, frozen_clock, risk, expiry)


def test_review_notices_fire_when_the_review_date_was_set_by_hand_with_a_non_utc_offset(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    review = frozen_clock.now + timedelta(days=40)
    risk = create_risk(client, next_review_at=review.astimezone(PLUS_TWO).isoformat())
    assert at(risk["next_review_at"]) == review and risk["next_review_set_by_hand"] is True

    tick_until(worker, frozen_clock, review + SECOND, times=2)
    assert [t for t, _ in review_events(client, risk["reference"])] == [REVIEW_DUE, REVIEW_OVERDUE]


# ---- the quarterly kick-off ----


def test_quarterly_review_kick_off_runs_once_per_quarter(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    assert frozen_clock.now.month == 7  # 2026Q3 begins
    create_risk(client, owner="head of infrastructure")
    create_risk(client, owner="head of infrastructure", title="Cooling fails")
    create_risk(client, owner="ciso", title="Phishing")
    create_risk(client, owner="CISO", title="Laptop theft")  # one owner, whatever the case

    # The quarter's kick-off, the hour's session sweep and the hour's roll-up of old KRI values.
    assert worker.tick()["periodic"] == 3
    assert worker.tick()["periodic"] == 0  # each claimed for its period
    tick_until(worker, frozen_clock, datetime.fromisoformat("2026-09-30T23:59:59+00:00"), times=2)
    (q3,) = events(client, "review.quarter_started")
    assert q3["subject_id"] == "2026Q3" and q3["data"]["period"] == "2026Q3"
    assert q3["data"]["open_risks"] == 4
    assert q3["data"]["owners"] == {"head of infrastructure": 2, "ciso": 2}
    assert sorted(e["data"]["owner"] for e in events(client, "review.requested")) == ["ciso", "head of infrastructure"]

    tick_until(worker, frozen_clock, datetime.fromisoformat("2026-10-01T00:00:00+00:00"), times=3)
    assert [e["data"]["period"] for e in events(client, "review.quarter_started")] == ["2026Q3", "2026Q4"]


# ---- several workers ----


def test_two_workers_ticking_at_once_fire_each_notice_exactly_once(
    client: TestClient, engine: Engine, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    for i in range(50):
        create_risk(client, title=f"Risk {i}")
    other = Worker(Database(engine), Settings(webhook_allowed_networks="127.0.0.0/8", smtp_host=None))
    try:
        reports = tick_together(worker, other)  # each new risk's owner check, once
        assert sum(r["notices"] for r in reports) == 50, reports
        for moment, kind in ((start + timedelta(days=167), REVIEW_DUE), (start + timedelta(days=181), REVIEW_OVERDUE)):
            frozen_clock.advance(moment - frozen_clock.now)
            reports = tick_together(worker, other)
            assert all(-1 not in r.values() for r in reports), reports
            assert sum(r["notices"] for r in reports) == 50, reports
            assert sum(r["periodic"] for r in reports) <= len(PERIODIC_JOBS), reports  # each job once at most
            fired = events(client, kind)
            assert len(fired) == 50
            assert len({e["subject_id"] for e in fired}) == 50
        reports = tick_together(worker, other)
        assert sum(r["notices"] for r in reports) == 0
        assert len(events(client, REVIEW_DUE)) == 50 and len(events(client, REVIEW_OVERDUE)) == 50
        # once each, not twice
        assert [e["subject_id"] for e in events(client, "review.quarter_started")] == ["2026Q3", "2026Q4"]
    finally:
        other.pool.shutdown()
        other.client.close()


def tick_together(*workers: Worker) -> list[dict[str, int]]:
    """Tick every worker at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(workers))
    reports: list[dict[str, int]] = [{} for _ in workers]
    errors: list[BaseException] = []

    def run(i: int, w: Worker) -> None:
        try:
            barrier.wait(timeout=30)
            reports[i] = w.tick()
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return reports


# ---- the due-notice index ----


def test_due_notice_query_uses_the_partial_pending_index(
    engine: Engine, backend: str, frozen_clock: FrozenClock
) -> None:
    """A register with years of fired notices: the tick's query must read only the pending ones, by index."""
    now = frozen_clock.now
    # 5,000 notices an hour apart, 4,000 of them past; one in a hundred still pending, the rest long fired.
    rows: list[dict[str, Any]] = [
        {
            "kind": REVIEW_DUE, "subject_type": "risk", "subject_id": i, "ref": f"r{i}", "data": {},
            "due_at": now + timedelta(hours=i - 4000), "fired_at": None if i % 100 == 0 else now,
        }
        for i in range(5000)
    ]  # fmt: skip
    pending_due = [r["subject_id"] for r in rows if r["fired_at"] is None and r["due_at"] <= now]
    assert len(pending_due) == 41
    with Session(engine) as session:
        session.execute(insert(Notice), rows)
        session.commit()
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")

    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "FROM notice" in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            claimed = [n.subject_id for n in claim_due(session, now, NOTICE_BATCH)]
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert claimed == pending_due  # the pending, due ones only, oldest first
    (statement, parameters), *_ = statements
    assert "fired_at IS NULL" in statement and "ORDER BY notice.due_at, notice.id" in statement

    explain = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain + statement, parameters))
        conn.rollback()
    assert "ix_notice_pending_due" in plan, plan
    if backend == "sqlite":
        assert "SCAN notice\n" not in plan + "\n", plan  # no full table scan
    with engine.connect() as conn:  # and the index really is partial, as the migration made it
        if backend == "sqlite":
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_notice_pending_due'")).scalar_one()
        else:
            sql = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_notice_pending_due'")).one()[
                0
            ]
    assert "fired_at IS NULL" in sql, sql
