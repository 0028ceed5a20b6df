"""Who acknowledged: a person's acknowledgement is a time to acknowledge, a machine's (an inbound integration, a
route that does not page) is recorded as automatic and measures nothing."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import FrozenClock, Keys
from tests.integrations.support import bearer, incident, make_integration

ENDPOINT = "/api/v1/inbound/generic"


def _alert(action: str) -> dict[str, Any]:
    alert: dict[str, Any] = {"action": action, "dedup_key": "backup-job/nightly"}
    if action == "trigger":
        alert.update(title="Nightly backup failed", severity="SEV2")
    return alert


def _send(client: TestClient, token: str, action: str, outcome: str) -> int:
    response = client.post(ENDPOINT, json=_alert(action), headers=bearer(token))
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == outcome
    incident_id: int = response.json()["incident_id"]
    return incident_id


def _moves(client: TestClient, incident_id: int) -> list[tuple[str, bool, str]]:
    """(to, automatic, text) of every state change on the timeline."""
    entries = client.get(f"/api/v1/incidents/{incident_id}/timeline").json()["items"]
    return [(e["data"]["to"], e["data"]["automatic"], e["text"]) for e in entries if e["kind"] == "state.changed"]


def test_an_alert_resolved_by_its_source_has_no_time_to_acknowledge(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    token = make_integration(client, keys, "generic")["token"]
    incident_id = _send(client, token, "trigger", "opened")
    frozen_clock.advance(timedelta(minutes=12))
    _send(client, token, "resolve", "resolved")

    resolved = incident(client, incident_id)
    assert resolved["state"] == "resolved"
    assert resolved["acknowledged_at"] is not None
    assert resolved["acknowledged_by"] == "integration:monitoring" and resolved["acknowledged_automatically"] is True
    assert resolved["measures"]["time_to_acknowledge_seconds"] is None
    assert resolved["measures"]["time_to_resolve_seconds"] == 12 * 60
    moves = _moves(client, incident_id)
    assert [(to, automatic) for to, automatic, _ in moves] == [
        ("acknowledged", True),
        ("mitigated", True),
        ("resolved", True),
    ]
    assert all("(automatic)" in text for *_, text in moves)


def test_a_route_that_does_not_page_acknowledges_automatically(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    token = make_integration(client, keys, "generic", default_route={"page": False})["token"]
    incident_id = _send(client, token, "trigger", "opened")
    opened = incident(client, incident_id)
    assert opened["state"] == "acknowledged" and opened["acknowledged_automatically"] is True
    assert opened["measures"]["time_to_acknowledge_seconds"] is None
    events = client.get("/api/v1/events", params={"type": "incident.state_changed"}).json()["items"]
    assert [e["data"]["automatic"] for e in events] == [True]


def test_a_person_acknowledging_before_the_source_resolves_is_measured(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    token = make_integration(client, keys, "generic")["token"]
    incident_id = _send(client, token, "trigger", "opened")
    frozen_clock.advance(timedelta(minutes=3))
    response = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", json={"note": "looking"})
    assert response.status_code == 200, response.text
    frozen_clock.advance(timedelta(minutes=7))
    _send(client, token, "resolve", "resolved")

    resolved = incident(client, incident_id)
    assert resolved["state"] == "resolved"
    assert resolved["acknowledged_by"] == "write-key" and resolved["acknowledged_automatically"] is False
    assert resolved["measures"]["time_to_acknowledge_seconds"] == 3 * 60
    assert resolved["measures"]["time_to_resolve_seconds"] == 10 * 60
    moves = _moves(client, incident_id)
    assert [(to, automatic) for to, automatic, _ in moves] == [
        ("acknowledged", False),
        ("mitigated", True),
        ("resolved", True),
    ]
    assert "(automatic)" not in moves[0][2] and moves[0][2].endswith(": looking")
