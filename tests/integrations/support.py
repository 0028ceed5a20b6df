"""Shared builders for the inbound alert tests: integrations, risks and bodies as the senders shape them."""

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Keys
from tests.helpers import risk_body


def make_risk(client: TestClient, title: str = "Core database unavailable") -> dict[str, Any]:
    body = risk_body(title=title, category="technology", inherent={"likelihood": 3, "impact": 5})
    response = client.post("/api/v1/risks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def make_integration(
    client: TestClient,
    keys: Keys,
    kind: str,
    routes: list[dict[str, Any]] | None = None,
    default_route: dict[str, Any] | None = None,
    name: str = "monitoring",
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "kind": kind, "routes": routes or []}
    if default_route is not None:
        body["default_route"] = default_route
    response = client.post("/api/v1/integrations", json=body, headers=keys.headers("admin"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["token"].startswith("rki_")
    return created


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def received(client: TestClient, keys: Keys, integration_id: int) -> list[dict[str, Any]]:
    """Received bodies, oldest first (admins only: they are the senders' bodies, credentials masked)."""
    response = client.get(
        f"/api/v1/integrations/{integration_id}/alerts", params={"limit": 500}, headers=keys.headers("admin")
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return list(reversed(items))


def outcomes(client: TestClient, keys: Keys, integration_id: int) -> list[str]:
    return [r["outcome"] for r in received(client, keys, integration_id)]


def incidents(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/incidents", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def incident(client: TestClient, incident_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/incidents/{incident_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def am_alert(
    fingerprint: str,
    status: str = "firing",
    starts_at: str = "2026-07-01T08:59:30.123Z",
    ends_at: str = "0001-01-01T00:00:00Z",
    alertname: str = "DatabaseDown",
    service: str = "database",
    severity: str = "critical",
    instance: str = "db-1:9187",
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook (v4) lists it."""
    return {
        "status": status,
        "labels": {"alertname": alertname, "service": service, "severity": severity, "instance": instance},
        "annotations": {"summary": "primary database down", "description": f"{instance} has stopped answering."},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1",
        "fingerprint": fingerprint,
    }


def am_body(
    alerts: list[dict[str, Any]], group_key: str = '{}:{alertname="DatabaseDown"}', alertname: str = "DatabaseDown"
) -> dict[str, Any]:
    """The whole webhook body; the group's status is firing while any of its alerts is."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "riskops",
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "severity": "critical"},
        "commonAnnotations": {"summary": "primary database down"},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }
