"""What an incident owes: its steps and communications stay owed after the resolution, and a required one keeps
the incident from closing (exercises alike); optional ones may stay open."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FrozenClock
from tests.helpers import assert_problem, row_counts
from tests.incidents.support import finish_obligations

SUMMARY = {
    "what_happened": "A misdirected export sent customer records to a partner.",
    "impact": "Names and e-mail addresses of 1,200 customers.",
    "root_cause": "The export job used a shared mailbox alias.",
}


def _activate(client: TestClient, slug: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/playbooks/{slug}/activate", json=body)
    assert response.status_code == 201, response.text
    incident: dict[str, Any] = response.json()
    return incident


def _resolve(client: TestClient, ref: str) -> dict[str, Any]:
    for action in ("acknowledge", "mitigate", "resolve"):
        response = client.post(f"/api/v1/incidents/{ref}/{action}")
        assert response.status_code == 200, response.text
    resolved: dict[str, Any] = response.json()
    return resolved


def _close(client: TestClient, ref: str, **summary: Any) -> Any:
    return client.post(f"/api/v1/incidents/{ref}/close", json={"summary": {**SUMMARY, **summary}})


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_plan_items_say_whether_they_are_required(client: TestClient, playbooks: Path) -> None:
    incident = _activate(client, "personal-data-breach")
    assert all(s["required"] for s in incident["steps"])
    optional = {m["key"] for m in incident["communications"] if not m["required"]}
    assert optional == {"controller-notification", "data-subject-notification"}
    assert next(m for m in incident["communications"] if m["audience"] == "regulator")["required"] is True


def test_closing_is_refused_while_required_work_is_owed_and_writes_nothing(
    client: TestClient, engine: Engine, playbooks: Path
) -> None:
    incident = _activate(client, "personal-data-breach")
    ref = incident["reference"]
    _resolve(client, ref)
    before = row_counts(engine)
    problem = assert_problem(_close(client, ref), 409, "steps.triage-and-confirm")
    assert problem["pending_steps"] == [s["key"] for s in incident["steps"]]
    required = [m["key"] for m in incident["communications"] if m["required"]]
    assert problem["unsent_communications"] == required
    assert {e["field"] for e in problem["errors"]} == {f"steps.{s['key']}" for s in incident["steps"]} | {
        f"communications.{key}" for key in required
    }
    assert row_counts(engine) == before
    after = client.get(f"/api/v1/incidents/{ref}").json()
    assert after["state"] == "resolved" and after["summary"] is None and after["version"] == incident["version"] + 3


def test_closing_names_only_what_is_still_owed_and_skipped_steps_count_as_finished(
    client: TestClient, playbooks: Path
) -> None:
    incident = _activate(client, "personal-data-breach")
    ref = incident["reference"]
    skip = client.post(f"/api/v1/incidents/{ref}/steps/notify-data-subjects/skip", json={"reason": "data encrypted"})
    assert skip.status_code == 200, skip.text
    left_step, left_message = "post-incident-review", "supervisory-authority-notification"
    current = client.get(f"/api/v1/incidents/{ref}").json()
    finish_obligations(
        client,
        {
            **current,
            "steps": [s for s in current["steps"] if s["key"] != left_step],
            "communications": [m for m in current["communications"] if m["key"] != left_message],
        },
    )
    assert client.post(f"/api/v1/incidents/{ref}/steps/{left_step}/start").json()["status"] == "in-progress"
    _resolve(client, ref)

    problem = assert_problem(_close(client, ref), 409)
    assert problem["pending_steps"] == [left_step] and problem["unsent_communications"] == [left_message]
    assert [e["field"] for e in problem["errors"]] == [f"steps.{left_step}", f"communications.{left_message}"]
    assert "in-progress" in problem["errors"][0]["message"]

    assert client.post(f"/api/v1/incidents/{ref}/steps/{left_step}/complete").status_code == 200
    assert client.post(f"/api/v1/incidents/{ref}/communications/{left_message}/sent", json={}).status_code == 200
    closed = _close(client, ref)
    assert closed.status_code == 200, closed.text
    final = closed.json()
    assert final["state"] == "closed"
    # The optional messages were never sent, and need not be.
    unsent = {m["key"] for m in final["communications"] if m["status"] == "pending"}
    assert unsent == {"controller-notification", "data-subject-notification"}


def test_an_exercise_follows_the_same_rule(client: TestClient, playbooks: Path) -> None:
    drill = _activate(client, "site-emergency", exercise=True)
    ref = drill["reference"]
    _resolve(client, ref)
    problem = assert_problem(_close(client, ref, objectives_met=True), 409)
    assert "hse-regulator-report" not in problem["unsent_communications"]  # only when injuries are reportable
    assert len(problem["pending_steps"]) == len(drill["steps"])

    finish_obligations(client, drill)
    closed = _close(client, ref, objectives_met=False)
    assert closed.status_code == 200, closed.text
    assert closed.json()["objectives_met"] is False
    report = next(m for m in closed.json()["communications"] if m["key"] == "hse-regulator-report")
    assert report["status"] == "pending" and report["required"] is False


def test_overdue_shows_in_every_state_until_the_item_is_finished(
    client: TestClient, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    incident = _activate(client, "core-service-outage")
    ref = incident["reference"]
    assert client.post(f"/api/v1/incidents/{ref}/steps/triage-and-declare/complete").status_code == 200
    assert client.post(f"/api/v1/incidents/{ref}/communications/staff-notice/sent", json={}).status_code == 200
    frozen_clock.advance(timedelta(minutes=30))
    assert _resolve(client, ref)["state"] == "resolved"

    frozen_clock.advance(timedelta(days=2))  # past every deadline but the post-incident review's
    resolved = client.get(f"/api/v1/incidents/{ref}").json()
    overdue = {s["key"]: s["overdue"] for s in resolved["steps"]}
    assert overdue.pop("triage-and-declare") is False  # done
    assert overdue.pop("post-incident-review") is False  # due after five days
    assert all(overdue.values()), overdue
    messages = {m["key"]: m["overdue"] for m in resolved["communications"]}
    assert messages.pop("staff-notice") is False and all(messages.values()), messages

    frozen_clock.advance(timedelta(days=4))
    assert client.get(f"/api/v1/incidents/{ref}").json()["steps"][-1]["overdue"] is True
    reopened = client.post(f"/api/v1/incidents/{ref}/reopen").json()
    assert reopened["state"] == "acknowledged" and reopened["steps"][-1]["overdue"] is True
