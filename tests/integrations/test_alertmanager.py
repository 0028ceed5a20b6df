"""Alertmanager's webhook receiver (version 4) into incidents: routing, dedup, resolution, order, limits, bursts."""

import asyncio
import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.helpers import debian_binary, free_port, risk_body, row_counts, running_service, wait_for
from tests.integrations.support import (
    am_alert,
    am_body,
    bearer,
    incident,
    incidents,
    make_integration,
    make_risk,
    outcomes,
    received,
)

ENDPOINT = "/api/v1/inbound/alertmanager"
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")


def _database_route(risk_ref: str) -> dict[str, Any]:
    return {
        "matchers": [{"label": "service", "op": "=", "value": "database"}],
        "risks": [risk_ref],
        "playbook": "core-service-outage",
    }


def _setup(client: TestClient, keys: Keys) -> tuple[dict[str, Any], dict[str, Any]]:
    risk = make_risk(client)
    integration = make_integration(client, keys, "alertmanager", routes=[_database_route(risk["reference"])])
    return risk, integration


def _send(client: TestClient, token: str, body: Any) -> httpx.Response:
    response: httpx.Response = client.post(ENDPOINT, json=body, headers=bearer(token))
    return response


def _accepted(client: TestClient, token: str, body: Any, outcome: str) -> dict[str, Any]:
    response = _send(client, token, body)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    assert answer["outcome"] == outcome, answer
    return answer


def test_firing_database_alert_opens_incident_running_the_playbook(
    client: TestClient, keys: Keys, playbooks: Path
) -> None:
    risk, integration = _setup(client, keys)
    body = am_body([am_alert("a1b2c3d4e5f60001")])

    answer = _accepted(client, integration["token"], body, "opened")
    opened = incident(client, answer["incident_id"])
    assert opened["playbook"] == "core-service-outage" and opened["playbook_version"] == 1
    assert opened["state"] == "declared" and opened["severity"] == "SEV1"
    assert opened["risk_ids"] == [risk["reference"]]
    assert opened["steps"] and all(s["status"] == "pending" for s in opened["steps"])
    assert opened["title"] == "DatabaseDown: primary database down"

    materialised = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert materialised["materialised_at"] is not None
    history = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]
    assert history[-1]["action"] == "materialised" and opened["reference"] in history[-1]["note"]

    # Alertmanager retries the same body when it gets no answer: it attaches, it does not open another.
    again = _accepted(client, integration["token"], body, "attached")
    assert again["incident_id"] == opened["id"]
    assert [i["id"] for i in incidents(client)] == [opened["id"]]

    rows = received(client, keys, integration["id"])
    assert [r["outcome"] for r in rows] == ["opened", "attached"]
    assert json.loads(rows[0]["body"]) == body and rows[0]["dedup_key"] == body["groupKey"]
    assert all(r["incident_id"] == opened["id"] for r in rows)


def test_group_resolves_only_when_every_alert_has_resolved_and_refiring_soon_after_reopens_it(
    client: TestClient, keys: Keys, playbooks: Path
) -> None:
    _, integration = _setup(client, keys)
    token = integration["token"]
    first = am_alert("fp-db-1", instance="db-1:9187")
    second = am_alert("fp-db-2", instance="db-2:9187", starts_at="2026-07-01T09:00:10Z")

    opened = _accepted(client, token, am_body([first]), "opened")["incident_id"]
    _accepted(client, token, am_body([first, second]), "attached")

    # One of two resolved: the group still fires, so the incident stays open.
    half = am_body([{**first, "status": "resolved", "endsAt": "2026-07-01T09:05:00Z"}, second])
    assert half["status"] == "firing"
    _accepted(client, token, half, "attached")
    assert incident(client, opened)["state"] == "declared"

    resolved_first = {**first, "status": "resolved", "endsAt": "2026-07-01T09:05:00Z"}
    resolved_second = {**second, "status": "resolved", "endsAt": "2026-07-01T09:06:00Z"}
    done = _accepted(client, token, am_body([resolved_first, resolved_second]), "resolved")
    assert done["incident_id"] == opened
    closed = incident(client, opened)
    assert closed["state"] == "resolved" and closed["resolved_at"] is not None

    # The same group fires again (a new startsAt) within the flap window: the same incident reopens.
    later = am_alert("fp-db-1", instance="db-1:9187", starts_at="2026-07-01T10:00:00Z")
    assert _accepted(client, token, am_body([later]), "reopened")["incident_id"] == opened
    assert incident(client, opened)["state"] == "acknowledged"
    assert [i["id"] for i in incidents(client)] == [opened]
    assert outcomes(client, keys, integration["id"]) == ["opened", "attached", "attached", "resolved", "reopened"]


def test_stale_firing_after_its_resolution_opens_nothing(client: TestClient, keys: Keys, playbooks: Path) -> None:
    _, integration = _setup(client, keys)
    token = integration["token"]
    firing = am_alert("fp-late", starts_at="2026-07-01T08:00:00Z")
    resolved = {**firing, "status": "resolved", "endsAt": "2026-07-01T08:10:00Z"}

    _accepted(client, token, am_body([resolved]), "ignored")
    _accepted(client, token, am_body([firing]), "ignored")  # delivered late: it is older news than the resolution
    assert incidents(client) == []
    assert outcomes(client, keys, integration["id"]) == ["ignored", "ignored"]


def test_unknown_fields_are_tolerated(client: TestClient, keys: Keys, playbooks: Path) -> None:
    _, integration = _setup(client, keys)
    alert = {**am_alert("fp-extra"), "silencedBy": [], "inhibitedBy": [], "futureField": {"x": 1}}
    body = {**am_body([alert]), "truncatedAlerts": 3, "someNewField": "from a later Alertmanager"}
    answer = _accepted(client, integration["token"], body, "opened")
    assert incident(client, answer["incident_id"])["playbook"] == "core-service-outage"


def test_default_route_when_no_matcher_holds(client: TestClient, keys: Keys, playbooks: Path) -> None:
    _, integration = _setup(client, keys)
    body = am_body([am_alert("fp-web", alertname="WebSlow", service="web", severity="warning")])
    body["commonLabels"] = {"alertname": "WebSlow", "severity": "warning"}
    answer = _accepted(client, integration["token"], body, "opened")
    opened = incident(client, answer["incident_id"])
    assert opened["playbook"] is None and opened["risk_ids"] == [] and opened["severity"] == "SEV3"


@pytest.mark.parametrize(
    "headers, query",
    [
        ({"Authorization": ""}, {}),
        ({"Authorization": "Bearer rki_not-a-real-token"}, {}),
        ({"Authorization": ""}, {"token": "rki_not-a-real-token"}),
    ],
    ids=["missing", "wrong-bearer", "wrong-query"],
)
def test_wrong_or_missing_token_is_refused_and_writes_nothing(
    client: TestClient, keys: Keys, engine: Engine, headers: dict[str, str], query: dict[str, str]
) -> None:
    _setup(client, keys)
    before = row_counts(engine)
    response = client.post(ENDPOINT, json=am_body([am_alert("fp")]), headers=headers, params=query)
    assert response.status_code == 401, response.text
    assert row_counts(engine) == before


def test_writer_api_key_is_not_an_integration_token(client: TestClient, keys: Keys, engine: Engine) -> None:
    _setup(client, keys)
    before = row_counts(engine)
    response = client.post(ENDPOINT, json=am_body([am_alert("fp")]))  # the client's own writer key
    assert response.status_code == 401, response.text
    assert row_counts(engine) == before


def test_token_in_query_string_is_accepted(client: TestClient, keys: Keys, playbooks: Path) -> None:
    _, integration = _setup(client, keys)
    response = client.post(
        ENDPOINT,
        json=am_body([am_alert("fp-q")]),
        params={"token": integration["token"]},
        headers={"Authorization": ""},
    )
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "opened"


def test_token_of_another_kind_is_refused(client: TestClient, keys: Keys, engine: Engine) -> None:
    pagerduty = make_integration(client, keys, "pagerduty-events-v2")
    before = row_counts(engine)
    response = _send(client, pagerduty["token"], am_body([am_alert("fp")]))
    assert response.status_code == 401, response.text
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"this is not json", "not JSON"),
        (json.dumps({k: v for k, v in am_body([am_alert("fp")]).items() if k != "groupKey"}).encode(), "groupKey"),
        (json.dumps(am_body([])).encode(), "alerts"),
        (json.dumps({**am_body([am_alert("fp")]), "status": "pending"}).encode(), "status"),
        (json.dumps([am_body([am_alert("fp")])]).encode(), "body"),
    ],
    ids=["not-json", "no-groupKey", "empty-alerts", "bad-status", "array"],
)
def test_invalid_body_is_kept_as_rejected_and_changes_nothing_else(
    client: TestClient, keys: Keys, engine: Engine, playbooks: Path, content: bytes, reason: str
) -> None:
    _, integration = _setup(client, keys)
    _accepted(client, integration["token"], am_body([am_alert("fp-before")]), "opened")
    before = row_counts(engine)

    response = client.post(
        ENDPOINT, content=content, headers={**bearer(integration["token"]), "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400 and problem["errors"]
    assert any(reason in e for e in problem["errors"]), problem["errors"]

    after = row_counts(engine)
    assert after["received_alert"] == before["received_alert"] + 1
    assert {t: n for t, n in after.items() if t != "received_alert"} == {
        t: n for t, n in before.items() if t != "received_alert"
    }
    last = received(client, keys, integration["id"])[-1]
    assert last["outcome"] == "rejected" and last["incident_id"] is None
    assert last["body"] == content.decode() and reason in last["detail"]
    assert len(incidents(client)) == 1


def test_oversize_body_is_refused_with_413(client: TestClient, keys: Keys, engine: Engine) -> None:
    _, integration = _setup(client, keys)
    alerts = [am_alert(f"fp-{i:05d}", instance=f"db-{i}:9187") for i in range(3000)]
    content = json.dumps(am_body(alerts)).encode()
    assert len(content) > 1024 * 1024
    before = row_counts(engine)
    response = client.post(
        ENDPOINT, content=content, headers={**bearer(integration["token"]), "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert row_counts(engine) == before


def test_concurrent_burst_in_one_group_opens_exactly_one_incident(
    database_url: str, keys: Keys, tmp_path: Path
) -> None:
    with running_service(database_url, tmp_path / "serve.log") as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            risk = http.post("/api/v1/risks", json=_risk_json(), headers=keys.headers("write"))
            assert risk.status_code == 201, risk.text
            created = http.post(
                "/api/v1/integrations",
                json={"name": "am", "kind": "alertmanager", "routes": [_database_route(risk.json()["reference"])]},
                headers=keys.headers("admin"),
            )
            assert created.status_code == 201, created.text
            integration = created.json()

        bodies = [am_body([am_alert(f"burst-{i:02d}", instance=f"db-{i}:9187")]) for i in range(50)]

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                return await asyncio.gather(
                    *(http.post(ENDPOINT, json=b, headers=bearer(integration["token"])) for b in bodies)
                )

        responses = asyncio.run(burst())
        assert [r.status_code for r in responses] == [202] * 50, [r.text for r in responses if r.status_code != 202]

        with httpx.Client(base_url=base, timeout=30, headers=keys.headers("read")) as http:
            listed = http.get("/api/v1/incidents").json()["items"]
            assert len(listed) == 1, listed
            assert listed[0]["playbook"] == "core-service-outage"
            path = f"/api/v1/integrations/{integration['id']}/alerts"
            rows = http.get(path, params={"limit": 500}, headers=keys.headers("admin")).json()["items"]
    assert len(rows) == 50
    assert sorted(r["outcome"] for r in rows) == ["attached"] * 49 + ["opened"]
    assert {r["incident_id"] for r in rows} == {listed[0]["id"]}


def _risk_json() -> dict[str, Any]:
    return risk_body(title="Core database unavailable", category="technology")


# ---- a real Alertmanager ----


@pytest.fixture
def alertmanager_binary() -> Path:
    return debian_binary(ALERTMANAGER, "prometheus-alertmanager", "RISKOPS_REQUIRE_ALERTMANAGER")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _start_alertmanager(binary: Path, config: Path, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    storage = tmp_path / "am-data"
    storage.mkdir()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
        try:
            return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for("Alertmanager to start", ready, timeout=15)
    return process


def test_real_alertmanager_opens_dedups_and_resolves_an_incident(
    database_url: str, keys: Keys, tmp_path: Path, alertmanager_binary: Path
) -> None:
    with running_service(database_url, tmp_path / "serve.log") as base:
        http = httpx.Client(base_url=base, timeout=10, headers=keys.headers("write"))
        risk = http.post("/api/v1/risks", json=_risk_json())
        assert risk.status_code == 201, risk.text
        risk_id = risk.json()["id"]
        created = http.post(
            "/api/v1/integrations",
            json={
                "name": "alertmanager",
                "kind": "alertmanager",
                "routes": [_database_route(risk.json()["reference"])],
            },
            headers=keys.headers("admin"),
        )
        assert created.status_code == 201, created.text
        integration = created.json()

        config = tmp_path / "alertmanager.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "riskops",
                        "group_by": ["alertname"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "riskops",
                            "webhook_configs": [
                                {
                                    "url": f"{base}{ENDPOINT}",
                                    "send_resolved": True,
                                    "http_config": {
                                        "authorization": {"type": "Bearer", "credentials": integration["token"]}
                                    },
                                }
                            ],
                        }
                    ],
                }
            )
        )
        port = free_port()
        process = _start_alertmanager(alertmanager_binary, config, port, tmp_path)
        try:
            am = f"http://127.0.0.1:{port}/api/v2/alerts"
            starts_at = _now()
            alert = {
                "labels": {"alertname": "DatabaseDown", "service": "database", "severity": "critical"},
                "annotations": {"summary": "primary database down"},
                "startsAt": starts_at,
            }
            assert httpx.post(am, json=[alert], timeout=5).status_code == 200

            def opened() -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = http.get("/api/v1/incidents").json()["items"]
                return items

            listed = wait_for("an incident from Alertmanager", opened)
            assert len(listed) == 1 and listed[0]["playbook"] == "core-service-outage"
            assert listed[0]["risk_ids"] == [f"R-{risk_id:04d}"]
            wait_for("the risk to materialise", lambda: http.get(f"/api/v1/risks/{risk_id}").json()["materialised_at"])

            # The same alert again (Prometheus re-sends while it fires): Alertmanager dedups, still one incident.
            assert httpx.post(am, json=[alert], timeout=5).status_code == 200
            time.sleep(2.5)  # more than group_interval: any notification it causes has been sent
            assert [i["id"] for i in opened()] == [listed[0]["id"]]

            assert httpx.post(am, json=[{**alert, "endsAt": _now()}], timeout=5).status_code == 200
            incident_id = listed[0]["id"]
            wait_for(
                "the incident to resolve",
                lambda: http.get(f"/api/v1/incidents/{incident_id}").json()["state"] == "resolved",
            )
            assert len(opened()) == 1
            kinds = [
                r["outcome"]
                for r in http.get(
                    f"/api/v1/integrations/{integration['id']}/alerts", headers=keys.headers("admin")
                ).json()["items"]
            ]
            assert kinds[0] == "resolved" and kinds[-1] == "opened" and "rejected" not in kinds
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            http.close()
