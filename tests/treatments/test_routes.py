"""Treatment plans over HTTP on both databases: adding and changing actions with their history and events, every
refusal naming its field, closed risks, finished actions, the plan's completion and the plan's summary."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.treatments import service
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.treatments.helpers import (
    action_body,
    add_action,
    change,
    day,
    events,
    history,
    library_control,
    new_risk,
)


def test_an_action_is_added_to_the_plan_with_its_history_and_event(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client)
    control_id = library_control(client)
    created = client.post(
        f"/api/v1/risks/{risk['id']}/treatment-actions",
        json=action_body(owner="  Facilities@Example.com ", control_id=control_id, control_effect="creates"),
    )
    assert created.status_code == 201, created.text
    action = created.json()
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/api/v1/risks/{risk['reference']}/treatment-actions/{action['id']}"
    assert action["risk"] == risk["reference"] and action["risk_id"] == risk["id"]
    assert action["owner"] == "Facilities@Example.com" and action["status"] == "planned"
    assert action["cost"] == {"amount": "12500.00", "currency": "EUR"}  # in the currency's minor unit, exactly
    assert action["control_id"] == control_id and action["control_effect"] == "creates"
    assert action["overdue"] is False and action["closed_at"] is None and action["created_by"] == "write-key"

    read = client.get(f"/api/v1/risks/{risk['reference']}/treatment-actions/{action['id']}")
    assert read.status_code == 200 and read.json() == action and read.headers["ETag"] == '"1"'
    listed = client.get(f"/api/v1/risks/{risk['id']}/treatment-actions").json()
    assert listed == {"items": [action], "next_cursor": None}

    entry = history(client, risk)[-1]
    assert entry["action"] == "treatment_action.added" and entry["actor"] == "write-key"
    recorded = entry["changes"][f"treatment_actions.{action['id']}"]
    assert recorded["old"] is None and recorded["new"]["title"] == "Install flood barriers"
    assert recorded["new"]["cost"] == {"amount": "12500.00", "currency": "EUR"}
    [event] = events(client, "treatment.*", risk["reference"])
    assert event["type"] == "treatment.action_added" and event["data"]["id"] == action["id"]
    assert event["data"]["risk"]["reference"] == risk["reference"] and event["data"]["actor"] == "write-key"
    # The plan is its own resource: the risk keeps its version (an edit of the risk is not made stale by it).
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["version"] == risk["version"]


def test_readers_read_plans_and_writers_change_them(client: TestClient, keys: Keys) -> None:
    risk = new_risk(client)
    action = add_action(client, risk)
    reader = keys.headers("read")
    path = f"/api/v1/risks/{risk['id']}/treatment-actions"
    assert_problem(client.post(path, json=action_body(), headers=reader), 403)
    assert_problem(client.patch(f"{path}/{action['id']}", json={"status": "done"}, headers=reader), 403)
    for url in (
        path,
        f"{path}/{action['id']}",
        f"/api/v1/risks/{risk['id']}/treatment-plan",
        "/api/v1/treatment-actions",
    ):
        assert client.get(url, headers=reader).status_code == 200, url
    assert_problem(client.get(path, headers={"Authorization": "Bearer nope"}), 401)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"due_date": None}, "body.due_date"),
        ({"due_date": 0}, "body.due_date"),
        ({"due_date": "20260930"}, "body.due_date"),
        ({"due_date": "0001-01-01"}, "body.due_date"),
        ({"due_date": "2026-02-30"}, "body.due_date"),
        ({"title": ""}, "body.title"),
        ({"title": "x" * 201}, "body.title"),
        ({"owner": " \t "}, "body.owner"),
        ({"description": "x" * 20001}, "body.description"),
        ({"cost": {"amount": "-1", "currency": "EUR"}}, "body.cost.amount"),
        ({"cost": {"amount": "100000000000", "currency": "EUR"}}, "body.cost.amount"),
        ({"cost": {"amount": "NaN", "currency": "EUR"}}, "body.cost.amount"),
        ({"cost": {"amount": "10.5", "currency": "JPY"}}, "body.cost.amount"),
        ({"cost": {"amount": "10.123", "currency": "EUR"}}, "body.cost.amount"),
        ({"cost": {"amount": "10", "currency": "eur"}}, "body.cost.currency"),
        ({"cost": {"amount": "10", "currency": "QQQ"}}, "body.cost.currency"),
        ({"cost": {"amount": "10"}}, "body.cost.currency"),
        ({"status": "done"}, "body.status"),
        ({"control_id": 3}, "body.control_effect"),
        ({"control_effect": "improves"}, "body.control_id"),
        ({"control_id": True, "control_effect": "improves"}, "body.control_id"),
        ({"control_id": 2**31, "control_effect": "improves"}, "body.control_id"),
        ({"control_id": 3, "control_effect": "removes"}, "body.control_effect"),
        ({"control_id": 99, "control_effect": "improves"}, "body.control_id"),  # no such control in the library
        ({"priority": "high"}, "body.priority"),
    ],
)
def test_a_bad_action_is_422_naming_the_field_and_writes_nothing(
    client: TestClient, engine: Engine, overrides: dict[str, Any], field: str
) -> None:
    risk = new_risk(client)
    before = row_counts(engine)
    response = client.post(f"/api/v1/risks/{risk['id']}/treatment-actions", json=action_body(**overrides))
    assert_problem(response, 422, field)
    assert row_counts(engine) == before


def test_amounts_are_exact_in_any_currency(client: TestClient) -> None:
    risk = new_risk(client)
    for cost, shown in (
        ({"amount": 1500, "currency": "JPY"}, "1500"),
        ({"amount": "0.125", "currency": "BHD"}, "0.125"),
        ({"amount": "99999999999.99", "currency": "USD"}, "99999999999.99"),
        ({"amount": "-0", "currency": "EUR"}, "0.00"),
        ({"amount": 0.1, "currency": "EUR"}, "0.10"),
    ):
        action = add_action(client, risk, cost=cost)
        assert action["cost"] == {"amount": shown, "currency": cost["currency"]}
        assert (
            client.get(f"/api/v1/risks/{risk['id']}/treatment-actions/{action['id']}").json()["cost"]["amount"] == shown
        )
    assert add_action(client, risk, cost=None)["cost"] is None


def test_a_change_names_the_version_it_read(client: TestClient) -> None:
    risk = new_risk(client)
    action = add_action(client, risk)
    path = f"/api/v1/risks/{risk['reference']}/treatment-actions/{action['id']}"
    moved = client.patch(path, json={"due_date": "2026-10-15", "status": "in-progress"}, headers={"If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] == '"2"' and moved.json()["version"] == 2 and moved.json()["status"] == "in-progress"
    stale = assert_problem(client.patch(path, json={"owner": "someone"}, headers={"If-Match": '"1"'}), 412)
    assert stale["current_version"] == 2
    same = client.patch(path, json={"due_date": "2026-10-15"}, headers={"If-Match": 'W/"2"'})
    assert same.status_code == 200 and same.json()["version"] == 2  # nothing changed: no new version
    control_id = library_control(client, "Pumps")
    cleared = change(client, action, cost=None, control_id=control_id, control_effect="improves")
    assert cleared["cost"] is None and cleared["control_id"] == control_id and cleared["version"] == 3
    entry = history(client, risk)[-1]
    assert entry["action"] == "treatment_action.updated"
    assert entry["changes"][f"treatment_actions.{action['id']}.cost"] == {
        "old": {"amount": "12500.00", "currency": "EUR"},
        "new": None,
    }
    assert entry["changes"][f"treatment_actions.{action['id']}.control_id"] == {"old": None, "new": control_id}
    assert [e["type"] for e in events(client, "treatment.*", risk["reference"])] == [
        "treatment.action_added", "treatment.action_updated", "treatment.action_updated",
    ]  # fmt: skip
    assert_problem(client.patch(path, json={"control_effect": None}), 422, "body.control_effect")
    assert_problem(client.patch(path, json={"control_id": None, "control_effect": "creates"}), 422, "body.control_id")
    unlinked = change(client, action, control_id=None)
    assert unlinked["control_id"] is None and unlinked["control_effect"] is None
    assert_problem(client.patch(path, json={"title": None}), 422, "body.title")
    assert_problem(client.patch(path, json={"due_date": "2026-13-01"}), 422, "body.due_date")


def test_cancelling_needs_a_reason_and_a_finished_action_is_final(client: TestClient, engine: Engine) -> None:
    risk = new_risk(client)
    action = add_action(client, risk)
    path = f"/api/v1/risks/{risk['id']}/treatment-actions/{action['id']}"
    assert_problem(client.patch(path, json={"status": "cancelled"}), 422, "body.cancellation_reason")
    reason_alone = client.patch(path, json={"status": "in-progress", "cancellation_reason": "why not"})
    assert_problem(reason_alone, 422, "body.cancellation_reason")
    cancelled = change(client, action, status="cancelled", cancellation_reason="Site to be vacated in 2027")
    assert cancelled["status"] == "cancelled" and cancelled["cancellation_reason"] == "Site to be vacated in 2027"
    assert cancelled["closed_at"] is not None and cancelled["closed_by"] == "write-key"
    entry = history(client, risk)[-1]
    assert entry["note"] == "Site to be vacated in 2027"
    assert entry["changes"][f"treatment_actions.{action['id']}.status"] == {"old": "planned", "new": "cancelled"}

    before = row_counts(engine)
    for fields in (
        {"status": "planned"},
        {"title": "Renamed"},
        {"due_date": "2027-01-31"},
        {"status": "cancelled", "cancellation_reason": "Another reason"},
    ):
        body = assert_problem(client.patch(path, json=fields), 409)
        assert body["type"].endswith("/invalid-transition") and body["allowed"] == []
    assert client.patch(path, json={"status": "cancelled", "title": action["title"]}).status_code == 200  # as it is
    assert row_counts(engine) == before
    # Cancelling with nothing done completes no plan: nobody is asked to reassess.
    assert events(client, "treatment.plan_completed") == [] and events(client, "risk.reassessment_requested") == []


def test_a_closed_risk_plan_does_not_change(client: TestClient, engine: Engine) -> None:
    risk = new_risk(client)
    action = add_action(client, risk)
    assert client.post(f"/api/v1/risks/{risk['id']}/close", json={"reason": "site sold"}).status_code == 200
    before = row_counts(engine)
    attempts = [
        client.post(f"/api/v1/risks/{risk['id']}/treatment-actions", json=action_body()),
        client.patch(f"/api/v1/risks/{risk['id']}/treatment-actions/{action['id']}", json={"status": "done"}),
    ]
    for response in attempts:
        body = assert_problem(response, 409)
        assert body["allowed"] == ["reopen"] and body["type"].endswith("/invalid-transition")
    assert row_counts(engine) == before
    assert client.get(f"/api/v1/risks/{risk['id']}/treatment-plan").json()["risk_status"] == "closed"
    client.post(f"/api/v1/risks/{risk['id']}/reopen", json={"reason": "site kept"})
    assert change(client, action, status="in-progress")["status"] == "in-progress"


def test_an_action_is_found_on_its_own_risk_only(client: TestClient) -> None:
    first, second = new_risk(client), new_risk(client, title="Cooling fails")
    action = add_action(client, first)
    for url in (
        f"/api/v1/risks/{second['id']}/treatment-actions/{action['id']}",
        f"/api/v1/risks/{first['id']}/treatment-actions/2147483648",
        f"/api/v1/risks/{first['id']}/treatment-actions/99999999999999999999",
        "/api/v1/risks/R-9999/treatment-actions",
        "/api/v1/risks/nonsense/treatment-plan",
    ):
        assert_problem(client.get(url), 404)
    assert_problem(client.patch(f"/api/v1/risks/{second['id']}/treatment-actions/{action['id']}", json={}), 404)
    assert_problem(client.post("/api/v1/risks/R-9999/treatment-actions", json=action_body()), 404)


def test_completing_the_last_open_action_completes_the_plan_and_asks_for_reassessment(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client)
    barriers, pumps, survey = (add_action(client, risk, title=t) for t in ("Barriers", "Pumps", "Survey"))
    frozen_clock.advance(timedelta(days=10))
    done = change(client, barriers, status="done")
    assert done["closed_at"] is not None and done["closed_by"] == "write-key"
    change(client, survey, status="cancelled", cancellation_reason="Covered by the insurer's survey")
    assert events(client, "treatment.plan_completed") == []
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["next_review_at"] == risk["next_review_at"]

    change(client, pumps, status="done")
    [completed] = events(client, "treatment.plan_completed", risk["reference"])
    assert completed["data"]["actions"] == {"done": 2, "cancelled": 1}
    [reassess] = events(client, "risk.reassessment_requested", risk["reference"])
    assert reassess["data"]["treatment_plan"] == {"done": 2, "cancelled": 1}
    assert [e["type"] for e in events(client, "treatment.action_completed")] == ["treatment.action_completed"] * 2
    assert day(client.get(f"/api/v1/risks/{risk['id']}").json()["next_review_at"][:10]) == frozen_clock.now.date()
    actions = [e["action"] for e in history(client, risk)]
    assert actions[-2:] == ["treatment_action.updated", "reassessment_requested"]
    assert history(client, risk)[-1]["note"] == "Treatment plan completed: reassess the residual rating."
    plan = client.get(f"/api/v1/risks/{risk['reference']}/treatment-plan").json()
    assert plan["status"] == "completed" and plan["completed_at"] == frozen_clock.now.isoformat().replace("+00:00", "Z")

    # A new action opens the plan again; completing it completes the plan once more.
    follow_up = add_action(client, risk, title="Test the pumps")
    assert client.get(f"/api/v1/risks/{risk['id']}/treatment-plan").json()["status"] == "open"
    change(client, follow_up, status="done")
    assert len(events(client, "treatment.plan_completed", risk["reference"])) == 2


def test_the_plan_summary_answers_what_is_being_done(client: TestClient, frozen_clock: FrozenClock) -> None:
    risk = new_risk(client)
    empty = client.get(f"/api/v1/risks/{risk['id']}/treatment-plan").json()
    assert empty["status"] == "none" and empty["actions"]["total"] == 0 and empty["next_action"] is None
    late = add_action(client, risk, title="Late", due_date="2026-07-10", cost={"amount": "100.50", "currency": "EUR"})
    soon = add_action(client, risk, title="Soon", due_date="2026-08-01", cost={"amount": "200", "currency": "USD"})
    add_action(client, risk, title="Later", due_date="2026-12-01", cost={"amount": "1000", "currency": "EUR"})
    done = add_action(client, risk, title="Done", due_date="2026-07-05", cost={"amount": "50", "currency": "EUR"})
    dropped = add_action(client, risk, title="Dropped", due_date="2026-07-02", cost={"amount": "9", "currency": "EUR"})
    change(client, done, status="done")
    change(client, dropped, status="cancelled", cancellation_reason="Not needed")
    change(client, soon, status="in-progress")
    frozen_clock.advance(timedelta(days=10))  # 2026-07-11: "Late" fell overdue today

    plan = client.get(f"/api/v1/risks/{risk['reference']}/treatment-plan").json()
    assert plan["status"] == "open" and plan["risk"] == risk["reference"]
    assert plan["actions"] == {
        "total": 5, "open": 3, "overdue": 1, "planned": 2, "in_progress": 1, "done": 1, "cancelled": 1,
    }  # fmt: skip
    assert plan["total_cost"] == [{"amount": "1150.50", "currency": "EUR"}, {"amount": "200.00", "currency": "USD"}]
    assert plan["remaining_cost"] == [{"amount": "1100.50", "currency": "EUR"}, {"amount": "200.00", "currency": "USD"}]
    assert plan["next_due_date"] == "2026-07-10" and plan["completed_at"] is None
    assert plan["next_action"] == {
        "id": late["id"], "title": "Late", "owner": late["owner"], "due_date": "2026-07-10", "overdue": True,
    }  # fmt: skip
    read = client.get(f"/api/v1/risks/{risk['id']}/treatment-actions/{late['id']}").json()
    assert read["overdue"] is True


def test_a_plan_has_at_most_its_limit_of_actions(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "MAX_ACTIONS", 2)
    risk = new_risk(client)
    add_action(client, risk)
    add_action(client, risk)
    body = assert_problem(client.post(f"/api/v1/risks/{risk['id']}/treatment-actions", json=action_body()), 409)
    assert "2 actions" in body["detail"]
