"""Quarterly review cycles: open, review, close into a frozen snapshot, movements, and the API's answers."""

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from riskops.config import Settings
from riskops.reviews import cycles, snapshots
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body, row_counts


def _risk(client: TestClient, **overrides: object) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _int(value: object) -> int:
    """A cell's value, which must be a number (XLSX cells are typed)."""
    assert isinstance(value, int), value
    return value


@pytest.mark.parametrize(
    ("start_month", "moment", "cycle", "bounds"),
    [
        (
            1,
            datetime(2026, 8, 15, tzinfo=UTC),
            "2026Q3",
            (datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)),
        ),
        (
            4,
            datetime(2026, 8, 15, tzinfo=UTC),
            "2026Q2",
            (datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)),
        ),
        (
            4,
            datetime(2027, 2, 1, tzinfo=UTC),
            "2026Q4",
            (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC)),
        ),
        (
            10,
            datetime(2026, 10, 1, tzinfo=UTC),
            "2026Q1",
            (datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ),
    ],
)
def test_fiscal_quarters(start_month: int, moment: datetime, cycle: str, bounds: tuple[datetime, datetime]) -> None:
    settings = Settings(fiscal_year_start_month=start_month)
    assert cycles.cycle_id_for(moment, settings.fiscal_year_start_month) == cycle
    assert cycles.bounds(cycle, settings.fiscal_year_start_month) == bounds


def test_a_quarter_from_opening_to_frozen_snapshot(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    flood = _risk(client, owner="ops@example.com")
    fraud = _risk(client, title="Payment fraud", owner="cfo", residual=None)
    opened = client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin)
    assert opened.status_code == 201, opened.text
    requested = client.get("/api/v1/events", params={"type": "review.requested"}).json()["items"]
    assert {e["data"]["owner"]: e["data"]["risks"] for e in requested} == {
        "cfo": [fraud["reference"]], "ops@example.com": [flood["reference"]],
    }  # fmt: skip
    assert_problem(client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin), 409)

    frozen_clock.advance(timedelta(days=20))
    reviewed = client.post(
        f"/api/v1/reviews/2026Q3/risks/{flood['reference']}", json={"outcome": "reviewed", "comment": "ok"}
    )
    assert reviewed.status_code == 201, reviewed.text
    assert client.get(f"/api/v1/risks/{flood['id']}").json()["last_reviewed_at"].startswith("2026-07-21")
    reassessed = client.post(
        f"/api/v1/reviews/2026Q3/risks/{fraud['reference']}",
        json={"outcome": "reassessed", "comment": "new card scheme", "inherent": {"likelihood": 5, "impact": 5}},
    )
    assert reassessed.status_code == 201
    progress = {p["owner"]: p for p in client.get("/api/v1/reviews/2026Q3").json()["progress"]}
    assert progress["cfo"]["reviewed"] == 1 and progress["ops@example.com"]["risks"] == 1

    assert_problem(client.get("/api/v1/reviews/2026Q3/export", params={"format": "json"}), 409)
    frozen_clock.advance(timedelta(days=80))  # past the quarter's end: the snapshot is as of 1 October
    closed = client.post("/api/v1/reviews/2026Q3/close", headers=admin)
    assert closed.status_code == 200, closed.text
    snapshot = closed.json()
    assert snapshot["as_of"].startswith("2026-10-01T00:00:00")
    content = snapshot["content"]
    assert snapshots.content_hash(content) == snapshot["content_hash"]
    by_ref = {r["reference"]: r for r in content["risks"]}
    assert (
        by_ref[fraud["reference"]]["level"] == "critical"
        and by_ref[fraud["reference"]]["review_in_cycle"] == "reassessed"
    )
    assert content["summary"]["open"] == 2 and content["summary"]["reviewed_in_cycle"] == 2
    assert_problem(client.post("/api/v1/reviews/2026Q3/close", headers=admin), 409)

    # The live register moves on; the frozen snapshot does not.
    client.patch(f"/api/v1/risks/{flood['id']}", json={"title": "Renamed later"})
    client.post(f"/api/v1/risks/{fraud['id']}/close", json={"reason": "gone"})
    again = client.get("/api/v1/reviews/2026Q3/snapshot").json()
    assert again["content_hash"] == snapshot["content_hash"] and again["content"] == content
    exported = client.get("/api/v1/reviews/2026Q3/export", params={"format": "json"})
    assert exported.headers["x-snapshot-hash"] == snapshot["content_hash"]
    assert exported.json()["hash"] == snapshot["content_hash"]
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE snapshot SET content_hash = 'forged'"))


def test_snapshot_as_of_a_past_date_is_rebuilt_from_history(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    risk = _risk(client, residual=None)
    frozen_clock.advance(timedelta(days=1))
    midpoint = frozen_clock.now
    frozen_clock.advance(timedelta(days=1))
    client.post(
        f"/api/v1/risks/{risk['id']}/assessments",
        json={"inherent": {"likelihood": 1, "impact": 1}, "rationale": "fixed"},
    )
    client.post(f"/api/v1/risks/{risk['id']}/controls", json={"title": "Pumps", "owner": "ops"})
    later = _risk(client, title="Added later")
    then = client.post(
        "/api/v1/register/snapshots", json={"as_of": midpoint.isoformat()}, headers=keys.headers("admin")
    )
    assert then.status_code == 201, then.text
    [past] = then.json()["content"]["risks"]
    assert (past["reference"], past["level"], past["controls"]) == (risk["reference"], "high", [])
    now = client.post(
        "/api/v1/register/snapshots", json={"as_of": frozen_clock.now.isoformat()}, headers=keys.headers("admin")
    )
    current = {r["reference"]: r for r in now.json()["content"]["risks"]}
    assert (
        current[risk["reference"]]["level"] == "low" and current[risk["reference"]]["controls"][0]["title"] == "Pumps"
    )
    assert later["reference"] in current
    future = client.post(
        "/api/v1/register/snapshots", json={"as_of": (frozen_clock.now + timedelta(days=1)).isoformat()},
        headers=keys.headers("admin"),
    )  # fmt: skip
    assert_problem(future, 422, "body.as_of")


def test_movements_between_quarters(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> None:
    admin = keys.headers("admin")
    up = _risk(client, title="Goes up", residual=None)
    down = _risk(client, title="Goes down", residual=None)
    gone = _risk(client, title="Closed", residual=None)
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin)
    frozen_clock.advance(timedelta(days=93))  # 2026-10-02, in Q4
    client.post("/api/v1/reviews/2026Q3/close", headers=admin)
    client.post("/api/v1/reviews", json={"cycle": "2026Q4"}, headers=admin)
    client.post(
        f"/api/v1/risks/{up['id']}/assessments", json={"inherent": {"likelihood": 5, "impact": 5}, "rationale": "r"}
    )
    client.post(
        f"/api/v1/risks/{down['id']}/assessments", json={"inherent": {"likelihood": 1, "impact": 1}, "rationale": "r"}
    )
    client.post(f"/api/v1/risks/{gone['id']}/close", json={"reason": "done"})
    added = _risk(client, title="New this quarter")
    client.post("/api/v1/incidents", json={"title": "Drill", "severity": "SEV4", "exercise": True})
    live = client.get("/api/v1/reviews/2026Q4/movements").json()
    assert live["added"] == [added["reference"]] and live["closed"] == [gone["reference"]]
    assert [m["risk"] for m in live["level_up"]] == [up["reference"]]
    assert [m["risk"] for m in live["level_down"]] == [down["reference"]]
    assert [e["title"] for e in live["exercises"]] == ["Drill"] and live["materialised"] == []
    assert_problem(client.get("/api/v1/reviews/2026Q4/movements", params={"since": "2025Q1"}), 404)


def test_bad_review_requests(client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock) -> None:
    admin = keys.headers("admin")
    risk = _risk(client)
    before = row_counts(engine)
    assert_problem(client.get("/api/v1/reviews/2031Q1"), 404)
    assert_problem(client.get("/api/v1/reviews/2031Q1/export"), 404)
    assert_problem(client.post("/api/v1/reviews", json={"cycle": "2026Q5"}, headers=admin), 422, "body.cycle")
    assert_problem(client.post("/api/v1/reviews", json={"cycle": "2026Q3"}), 403)
    assert row_counts(engine) == before
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin)
    client.post("/api/v1/reviews/2026Q3/close", headers=admin)
    assert_problem(client.get("/api/v1/reviews/2026Q3/export", params={"format": "docx"}), 422, "query.format")
    bad = client.post(f"/api/v1/reviews/2026Q3/risks/{risk['id']}", json={"outcome": "reviewed", "comment": "late"})
    assert_problem(bad, 409)


def test_scheduler_opens_the_quarter(client: TestClient, worker: Worker, frozen_clock: FrozenClock) -> None:
    _risk(client, owner="ops")
    worker.tick()
    cycle = client.get("/api/v1/reviews/2026Q3")
    assert cycle.status_code == 200 and cycle.json()["opened_by"] == "scheduler"
    assert len(client.get("/api/v1/events", params={"type": "review.requested"}).json()["items"]) == 1


def test_calendar_feed_with_a_feed_token_in_the_url(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> None:
    accepted = {"approver": "cfo", "expires_at": (frozen_clock.now + timedelta(days=40)).isoformat()}
    _risk(client, owner="alice", treatment="accept", residual={"likelihood": 1, "impact": 1}, acceptance=accepted)
    _risk(client, owner="bob")
    created = client.post("/api/v1/register/feed-tokens", json={"name": "register"}, headers=keys.headers("admin"))
    assert created.status_code == 201, created.text
    feed = client.get(
        "/api/v1/register/calendar.ics",
        params={"token": created.json()["token"], "owner": "alice"},
        headers={"Authorization": ""},
    )
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    body = feed.text
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert body.count("BEGIN:VEVENT") == 2 and "DTSTART;VALUE=DATE:20260810" in body
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    assert_problem(
        client.get("/api/v1/register/calendar.ics", params={"token": "nope"}, headers={"Authorization": ""}), 401
    )


def test_heat_maps_as_svg(client: TestClient, keys: Keys, frozen_clock: FrozenClock, tmp_path: Path) -> None:
    _risk(client)
    live = client.get("/api/v1/register/heatmap.svg", params={"view": "residual"})
    assert live.status_code == 200 and live.headers["content-type"].startswith("image/svg+xml")
    assert live.text.lstrip().startswith("<svg") or live.text.lstrip().startswith("<?xml")
    assert_problem(client.get("/api/v1/register/heatmap.svg", params={"view": "sideways"}), 422, "query.view")


def test_cli_export_writes_the_frozen_snapshot(
    client: TestClient, keys: Keys, database_url: str, frozen_clock: FrozenClock, tmp_path: Path
) -> None:
    _risk(client)
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=keys.headers("admin"))
    digest = client.post("/api/v1/reviews/2026Q3/close", headers=keys.headers("admin")).json()["content_hash"]
    env = {**os.environ, "RISKOPS_DATABASE_URL": database_url}
    target = tmp_path / "review.xlsx"
    run = [sys.executable, "-m", "riskops", "export", "--cycle", "2026Q3", "--format", "xlsx", "-o", str(target)]
    result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert digest in result.stdout
    book = load_workbook(target)
    assert book["Register"].max_row == 2
    missing = subprocess.run([*run[:5], "2031Q1"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "2031Q1" in missing.stderr


def test_downloaded_xlsx_and_pdf_match_the_snapshot(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> None:
    for i in range(3):
        _risk(client, title=f"Risk {i}", inherent={"likelihood": 1 + i, "impact": 5}, residual=None)
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=keys.headers("admin"))
    snapshot = client.post("/api/v1/reviews/2026Q3/close", headers=keys.headers("admin")).json()
    digest, content = snapshot["content_hash"], snapshot["content"]

    xlsx = client.get("/api/v1/reviews/2026Q3/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.headers["x-snapshot-hash"] == digest
    book = load_workbook(io.BytesIO(xlsx.content))
    register = list(book["Register"].iter_rows(values_only=True))
    header, rows = register[0], register[1:]
    assert len(rows) == len(content["risks"]) == 3
    scores = sorted(_int(row[header.index("score")]) for row in rows)
    assert scores == sorted(r["score"] for r in content["risks"])
    assert any(digest in str(cell) for row in book["Methodology"].iter_rows(values_only=True) for cell in row)

    pdf = client.get("/api/v1/reviews/2026Q3/export", params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    pages = PdfReader(io.BytesIO(pdf.content)).pages
    assert all(digest in page.extract_text() for page in pages)
    assert "2026Q3" in pages[0].extract_text()

    csv_text = client.get("/api/v1/reviews/2026Q3/export", params={"format": "csv"}).text
    assert len(csv_text.strip().split("\r\n")) == 4


def test_a_quarter_opens_once_it_has_started(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    _risk(client)
    before = row_counts(engine)
    early = assert_problem(client.post("/api/v1/reviews", json={"cycle": "2026Q4"}, headers=admin), 409, "body.cycle")
    assert "2026-10-01" in early["detail"]
    for undatable in ("0000Q1", "9999Q4"):  # before year 1, after 9999
        assert_problem(client.post("/api/v1/reviews", json={"cycle": undatable}, headers=admin), 422, "body.cycle")
    assert row_counts(engine) == before
    assert client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin).status_code == 201
    frozen_clock.advance(datetime(2026, 10, 1, tzinfo=UTC) - frozen_clock.now)  # the first instant of 2026Q4
    assert client.post("/api/v1/reviews", json={"cycle": "2026Q4"}, headers=admin).status_code == 201


def test_progress_counts_an_owner_once_whatever_the_case(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    first = _risk(client, owner="Head of Infrastructure")
    _risk(client, owner="head of infrastructure", title="Cooling fails")
    _risk(client, owner="cfo", title="Payment fraud")
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=keys.headers("admin"))
    client.post(f"/api/v1/reviews/2026Q3/risks/{first['reference']}", json={"outcome": "reviewed", "comment": "ok"})
    progress = client.get("/api/v1/reviews/2026Q3").json()["progress"]
    assert [(p["owner"], p["risks"], p["reviewed"]) for p in progress] == [
        ("cfo", 1, 0), ("Head of Infrastructure", 2, 1),
    ]  # fmt: skip


def test_cycles_listed_newest_first_with_progress_totals(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    assert client.get("/api/v1/reviews").json() == []
    flood = _risk(client, owner="Head of Infrastructure")
    cooling = _risk(client, owner="head of infrastructure", title="Cooling fails")
    fraud = _risk(client, owner="cfo", title="Payment fraud")
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin)
    client.post(f"/api/v1/reviews/2026Q3/risks/{flood['reference']}", json={"outcome": "reviewed", "comment": "ok"})
    client.post(
        f"/api/v1/reviews/2026Q3/risks/{fraud['reference']}", json={"outcome": "proposed-closure", "comment": "gone"}
    )
    frozen_clock.advance(timedelta(days=93))  # 2026-10-02
    digest = client.post("/api/v1/reviews/2026Q3/close", headers=admin).json()["content_hash"]
    client.post("/api/v1/reviews", json={"cycle": "2026Q4"}, headers=admin)
    client.post(f"/api/v1/reviews/2026Q4/risks/{cooling['reference']}", json={"outcome": "reviewed", "comment": "ok"})

    listed = client.get("/api/v1/reviews")
    assert listed.status_code == 200, listed.text
    q4, q3 = listed.json()
    assert (q4["id"], q4["state"], q4["snapshot_hash"], q4["closed_at"]) == ("2026Q4", "open", None, None)
    assert (q3["id"], q3["state"], q3["snapshot_hash"], q3["closed_by"]) == ("2026Q3", "closed", digest, "admin-key")
    assert (q3["starts_at"], q3["ends_at"]) == ("2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z")
    assert q3["progress"] == {"risks": 3, "reviewed": 2, "proposed_closure": 1}
    assert q4["progress"] == {"risks": 3, "reviewed": 1, "proposed_closure": 0}
    for cycle in (q3, q4):  # the totals are the per-owner figures added up
        owners = client.get(f"/api/v1/reviews/{cycle['id']}").json()["progress"]
        assert {k: sum(p[k] for p in owners) for k in cycle["progress"]} == cycle["progress"]
        assert len(owners) == 2

    def statements_about_reviews() -> int:
        seen: list[str] = []

        def count(conn: object, cursor: object, statement: str, *args: object) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/api/v1/reviews").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return sum("review" in s for s in seen)

    few = statements_about_reviews()
    for i in range(5):
        _risk(client, owner=f"owner {i}", title=f"Risk {i}")
    for cycle in ("2025Q4", "2026Q1", "2026Q2"):
        assert client.post("/api/v1/reviews", json={"cycle": cycle}, headers=admin).status_code == 201
    assert [c["id"] for c in client.get("/api/v1/reviews").json()] == ["2026Q4", "2026Q3", "2026Q2", "2026Q1", "2025Q4"]
    assert statements_about_reviews() == few <= 2


def test_openapi_documents_the_review_answers(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    listed = paths["/api/v1/reviews"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["type"] == "array" and listed["items"]["$ref"].endswith("/CycleSummary")
    remind = paths["/api/v1/reviews/{cycle_id}/remind"]["post"]
    assert remind["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReminderPublic")
    assert {"404", "409"} <= set(remind["responses"]) and "409" in paths["/api/v1/reviews"]["post"]["responses"]
