"""GET /api/v1/treatment-actions: what is being done across the register, by whom and by when, the soonest due
first, filtered by owner, status, risk, due date and overdue, page by page."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from riskops.pagination import encode_cursor
from tests.conftest import FrozenClock
from tests.helpers import assert_problem
from tests.treatments.helpers import add_action, change, new_risk


def titles(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/api/v1/treatment-actions", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [a["title"] for a in response.json()["items"]]


def test_the_register_lists_actions_by_due_date_with_its_filters(client: TestClient, frozen_clock: FrozenClock) -> None:
    flood, cyber = new_risk(client), new_risk(client, title="Ransomware", owner="ciso")
    add_action(client, flood, title="Barriers", owner="Facilities", due_date="2026-07-20")
    pumps = add_action(client, flood, title="Pumps", owner="facilities", due_date="2026-07-05")
    add_action(client, cyber, title="Backups", owner="IT ops", due_date="2026-07-05")
    edr = add_action(client, cyber, title="EDR", owner="it ops", due_date="2026-09-01")
    change(client, edr, status="in-progress")
    closed_risk = new_risk(client, title="Old site")
    add_action(client, closed_risk, title="Old site works", due_date="2026-07-01")
    client.post(f"/api/v1/risks/{closed_risk['id']}/close", json={"reason": "site sold"})
    frozen_clock.advance(timedelta(days=9))  # 2026-07-10: "Pumps" and "Backups" are overdue

    assert titles(client) == ["Old site works", "Pumps", "Backups", "Barriers", "EDR"]
    assert titles(client, owner="FACILITIES") == ["Pumps", "Barriers"]
    assert titles(client, owner=["facilities", "it ops"]) == ["Pumps", "Backups", "Barriers", "EDR"]
    assert titles(client, status="in-progress") == ["EDR"]
    assert titles(client, status=["in-progress", "planned"]) == [
        "Old site works",
        "Pumps",
        "Backups",
        "Barriers",
        "EDR",
    ]
    # The closed risk's action is past its date but not overdue: a closed risk's plan is a record.
    assert titles(client, overdue="true") == ["Pumps", "Backups"]
    assert titles(client, overdue="false") == ["Old site works", "Barriers", "EDR"]
    assert titles(client, due_before="2026-07-20") == ["Old site works", "Pumps", "Backups"]
    assert titles(client, risk=[cyber["reference"], str(closed_risk["id"])]) == ["Old site works", "Backups", "EDR"]
    assert titles(client, risk="R-0999") == []
    change(client, pumps, status="done")
    assert titles(client, overdue="true", owner="facilities") == []

    listed = client.get("/api/v1/treatment-actions", params={"risk": cyber["reference"]}).json()["items"]
    assert [(a["risk"], a["overdue"], a["status"]) for a in listed] == [
        (cyber["reference"], True, "planned"), (cyber["reference"], False, "in-progress"),
    ]  # fmt: skip


def test_pages_follow_the_cursor_without_gaps_or_repeats(client: TestClient) -> None:
    risk = new_risk(client)
    for i in range(7):
        add_action(client, risk, title=f"A{i}", due_date=f"2026-08-0{1 + i % 3}")
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/treatment-actions", params=params).json()
        seen += [(a["due_date"], a["id"]) for a in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == sorted(seen) and len(set(seen)) == 7


def test_bad_filters_are_refused_naming_the_parameter(client: TestClient) -> None:
    for params, field in (
        ({"status": "finished"}, "query.status.0"),
        ({"overdue": "maybe"}, "query.overdue"),
        ({"due_before": "0"}, "query.due_before"),
        ({"due_before": "2026-02-30"}, "query.due_before"),
        ({"limit": 501}, "query.limit"),
        ({"owner": "x" * 201}, "query.owner.0"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": encode_cursor(["2026-08-01", 2**40])}, "query.cursor"),
        ({"cursor": encode_cursor(["yesterday", 1])}, "query.cursor"),
        ({"sort": "title"}, "query.sort"),
    ):
        assert_problem(client.get("/api/v1/treatment-actions", params=params), 422, field)
    for ref in ("nonsense", "99999999999"):
        assert_problem(client.get("/api/v1/treatment-actions", params={"risk": ref}), 404)
