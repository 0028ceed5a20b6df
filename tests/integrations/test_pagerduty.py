"""PagerDuty Events API v2 (enqueue) into incidents: dedup keys, acknowledge, resolve, routing, PagerDuty's answers."""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.helpers import row_counts
from tests.integrations.support import incident, incidents, make_integration, make_risk, outcomes, received

ENDPOINT = "/api/v1/inbound/pagerduty/v2/enqueue"
NO_KEY = {"Authorization": ""}  # the routing key is the credential; no API key is sent


def _event(routing_key: str, action: str = "trigger", dedup_key: str | None = None, **payload: Any) -> dict[str, Any]:
    """An event as PagerDuty's Events v2 documentation shapes it."""
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action}
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    if action == "trigger":
        event["payload"] = {
            "summary": "DISK at 99% on machine prod-datapipe03.example.com",
            "source": "prod-datapipe03.example.com",
            "severity": "critical",
            "timestamp": "2026-07-01T08:42:58.315+0000",
            "component": "mysql",
            "group": "prod-datapipe",
            "class": "disk",
            "custom_details": {"free space": "1%", "ping time": "1500ms", "load avg": 0.75},
            **payload,
        }
        event["links"] = [{"href": "https://example.com/", "text": "Link text"}]
        event["images"] = [{"src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png"}]
        event["client"] = "Sample Monitoring Service"
        event["client_url"] = "https://monitoring.example.com"
    return event


def _enqueue(client: TestClient, event: Any) -> dict[str, Any]:
    response = client.post(ENDPOINT, json=event, headers=NO_KEY)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    assert answer["status"] == "success" and answer["message"] == "Event processed"
    return answer


def _invalid(client: TestClient, content: bytes) -> list[str]:
    response = client.post(ENDPOINT, content=content, headers={**NO_KEY, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["status"] == "invalid event" and answer["message"] and answer["errors"]
    errors: list[str] = answer["errors"]
    return errors


def test_trigger_dedup_acknowledge_resolve(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "pagerduty-events-v2")
    key = integration["token"]

    first = _enqueue(client, _event(key))
    dedup_key = first["dedup_key"]
    assert dedup_key  # generated when the sender gave none
    [opened] = incidents(client)
    assert opened["state"] == "declared" and opened["severity"] == "SEV1"  # critical, no route severity
    assert opened["title"] == "DISK at 99% on machine prod-datapipe03.example.com"
    assert "free space" in incident(client, opened["id"])["description"]

    assert _enqueue(client, _event(key, dedup_key=dedup_key))["dedup_key"] == dedup_key
    assert [i["id"] for i in incidents(client)] == [opened["id"]]

    _enqueue(client, _event(key, "acknowledge", dedup_key))
    assert incident(client, opened["id"])["state"] == "acknowledged"

    assert _enqueue(client, _event(key, "resolve", dedup_key))["dedup_key"] == dedup_key
    assert incident(client, opened["id"])["state"] == "resolved"

    rows = received(client, keys, integration["id"])
    assert [r["outcome"] for r in rows] == ["opened", "attached", "acknowledged", "resolved"]
    assert {r["dedup_key"] for r in rows} == {dedup_key} and {r["incident_id"] for r in rows} == {opened["id"]}


def test_sender_dedup_key_is_kept_and_a_trigger_soon_after_resolve_reopens(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "pagerduty-events-v2")
    key = integration["token"]
    assert _enqueue(client, _event(key, dedup_key="srv01/HTTP"))["dedup_key"] == "srv01/HTTP"
    _enqueue(client, _event(key, "resolve", "srv01/HTTP"))
    _enqueue(client, _event(key, dedup_key="srv01/HTTP"))  # within the flap window (see test_flapping.py)
    assert [i["state"] for i in incidents(client)] == ["acknowledged"]
    assert outcomes(client, keys, integration["id"]) == ["opened", "resolved", "reopened"]


def test_acknowledge_or_resolve_for_an_unknown_key_is_accepted_and_ignored(
    client: TestClient, keys: Keys, engine: Engine
) -> None:
    integration = make_integration(client, keys, "pagerduty-events-v2")
    before = row_counts(engine)
    for action in ("resolve", "acknowledge"):
        assert _enqueue(client, _event(integration["token"], action, "never-triggered"))["dedup_key"] == (
            "never-triggered"
        )
    assert incidents(client) == []
    rows = received(client, keys, integration["id"])
    assert [r["outcome"] for r in rows] == ["ignored", "ignored"] and rows[0]["incident_id"] is None
    after = row_counts(engine)
    assert after["received_alert"] == before["received_alert"] + 2 and after["incident"] == before["incident"]


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(event))
    target = copy
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return copy


@pytest.mark.parametrize(
    "build, reason",
    [
        (lambda k: _without(_event(k), "payload"), "payload"),
        (lambda k: _event(k, severity="disaster"), "severity"),
        (lambda k: _event(k, "acknowledge"), "dedup_key"),
        (lambda k: _event(k, "resolve"), "dedup_key"),
        (lambda k: _without(_event(k), "payload", "summary"), "summary"),
        (lambda k: _without(_event(k), "payload", "source"), "source"),
        (lambda k: {**_event(k), "event_action": "escalate"}, "event_action"),
        (lambda k: _event(k, summary=""), "summary"),
    ],
    ids=[
        "no-payload",
        "bad-severity",
        "ack-no-key",
        "resolve-no-key",
        "no-summary",
        "no-source",
        "bad-action",
        "blank",
    ],
)
def test_invalid_events_answer_as_pagerduty_and_are_kept_as_rejected(
    client: TestClient, keys: Keys, engine: Engine, build: Any, reason: str
) -> None:
    integration = make_integration(client, keys, "pagerduty-events-v2")
    event = build(integration["token"])
    before = row_counts(engine)

    errors = _invalid(client, json.dumps(event).encode())
    assert any(reason in e for e in errors), errors

    after = row_counts(engine)
    assert after["received_alert"] == before["received_alert"] + 1
    assert {t: n for t, n in after.items() if t != "received_alert"} == {
        t: n for t, n in before.items() if t != "received_alert"
    }
    [row] = received(client, keys, integration["id"])
    # Kept as received, but for the routing key: it is the integration's token.
    assert row["outcome"] == "rejected" and json.loads(row["body"]) == {**event, "routing_key": "***"}
    assert integration["token"] not in row["body"]


def test_not_json_is_an_invalid_event(client: TestClient, keys: Keys, engine: Engine) -> None:
    make_integration(client, keys, "pagerduty-events-v2")
    before = row_counts(engine)
    assert _invalid(client, b"{not json")
    assert row_counts(engine) == before  # no routing key could be read: nothing to keep it under


@pytest.mark.parametrize("routing_key", ["R0UT1NGK3YTHATD0ESN0TEX1ST00000", "", None])
def test_wrong_or_missing_routing_key_is_refused(
    client: TestClient, keys: Keys, engine: Engine, routing_key: str | None
) -> None:
    make_integration(client, keys, "pagerduty-events-v2")
    event = _event("placeholder")
    if routing_key is None:
        del event["routing_key"]
    else:
        event["routing_key"] = routing_key
    before = row_counts(engine)
    response = client.post(ENDPOINT, json=event, headers=NO_KEY)
    assert response.status_code == 401, response.text
    assert row_counts(engine) == before


def test_routing_key_of_another_kind_is_refused(client: TestClient, keys: Keys, engine: Engine) -> None:
    alertmanager = make_integration(client, keys, "alertmanager")
    before = row_counts(engine)
    response = client.post(ENDPOINT, json=_event(alertmanager["token"]), headers=NO_KEY)
    assert response.status_code == 401, response.text
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    "severity, expected", [("critical", "SEV1"), ("error", "SEV2"), ("warning", "SEV3"), ("info", "SEV4")]
)
def test_severity_maps_when_the_route_sets_none(client: TestClient, keys: Keys, severity: str, expected: str) -> None:
    integration = make_integration(client, keys, "pagerduty-events-v2")
    _enqueue(client, _event(integration["token"], severity=severity))
    [opened] = incidents(client)
    assert opened["severity"] == expected


def test_routes_match_component_and_source_and_choose_the_playbook(
    client: TestClient, keys: Keys, playbooks: Path
) -> None:
    risk = make_risk(client)
    routes: list[dict[str, Any]] = [
        {
            "matchers": [
                {"label": "component", "op": "=~", "value": "postgres(ql)?|mysql"},
                {"label": "source", "op": "=~", "value": r"prod-.*\.example\.com"},
            ],
            "risks": [risk["reference"]],
            "playbook": "core-service-outage",
        },
        {"matchers": [{"label": "component", "op": "=", "value": "batch"}], "severity": "SEV4", "page": False},
    ]
    integration = make_integration(client, keys, "pagerduty-events-v2", routes=routes)
    key = integration["token"]

    _enqueue(client, _event(key, dedup_key="db", component="postgresql"))
    _enqueue(client, _event(key, dedup_key="staging-db", component="mysql", source="staging-db.example.com"))
    _enqueue(client, _event(key, dedup_key="batch", component="batch", severity="critical"))
    _enqueue(client, _event(key, dedup_key="partial", component="mysqlx"))  # fullmatch: not mysql

    by_key = {r["dedup_key"]: incident(client, r["incident_id"]) for r in received(client, keys, integration["id"])}
    assert by_key["db"]["playbook"] == "core-service-outage" and by_key["db"]["risk_ids"] == [risk["reference"]]
    assert by_key["db"]["steps"] and by_key["db"]["state"] == "declared"
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["materialised_at"] is not None

    assert by_key["staging-db"]["playbook"] is None  # the source does not match: the default route
    assert by_key["partial"]["playbook"] is None

    # page: false declares the incident acknowledged, at the route's severity.
    assert by_key["batch"]["state"] == "acknowledged" and by_key["batch"]["severity"] == "SEV4"
    assert by_key["batch"]["acknowledged_at"] is not None


def test_default_route_links_risks_and_pages_not(client: TestClient, keys: Keys) -> None:
    risk = make_risk(client)
    integration = make_integration(
        client, keys, "pagerduty-events-v2", default_route={"risks": [risk["reference"]], "page": False}
    )
    _enqueue(client, _event(integration["token"], severity="warning"))
    [opened] = incidents(client)
    assert (
        opened["risk_ids"] == [risk["reference"]] and opened["state"] == "acknowledged" and opened["severity"] == "SEV3"
    )


def test_trigger_after_a_human_closed_the_incident_opens_a_new_one(client: TestClient, keys: Keys) -> None:
    """Closing by hand leaves the alert group open; the next trigger must not attach to the closed incident
    (that would swallow the outage, and every later trigger with the key). PagerDuty opens a new alert here."""
    integration = make_integration(client, keys, "pagerduty-events-v2")
    key = integration["token"]
    _enqueue(client, _event(key, dedup_key="srv01/disk"))
    [first] = incidents(client)
    for action in ("acknowledge", "mitigate", "resolve"):
        assert client.post(f"/api/v1/incidents/{first['id']}/{action}", json={}).status_code == 200
    summary = {"what_happened": "Disk filled up.", "impact": "None.", "root_cause": "Log rotation off."}
    closed = client.post(f"/api/v1/incidents/{first['id']}/close", json={"summary": summary})
    assert closed.status_code == 200 and closed.json()["state"] == "closed", closed.text

    _enqueue(client, _event(key, dedup_key="srv01/disk"))  # the disk fills up again, days later

    assert outcomes(client, keys, integration["id"])[-1] == "opened"
    assert sorted(i["state"] for i in incidents(client)) == ["closed", "declared"]
