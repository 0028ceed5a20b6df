"""Treatment plans over HTTP: a risk to plan for, an action added to it, and the events they caused."""

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from tests.controls.test_library import control_body
from tests.helpers import risk_body


def new_risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def action_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Install flood barriers",
        "description": "Demountable barriers at the loading bay.",
        "owner": "facilities@example.com",
        "due_date": "2026-09-30",
        "cost": {"amount": "12500", "currency": "EUR"},
    }
    body.update(overrides)
    return body


def add_action(client: TestClient, risk: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/risks/{risk['reference']}/treatment-actions", json=action_body(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def change(client: TestClient, action: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = client.patch(f"/api/v1/risks/{action['risk']}/treatment-actions/{action['id']}", json=fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events(client: TestClient, pattern: str, subject: str | None = None) -> list[dict[str, Any]]:
    """Every event of a type or pattern (optionally about one risk), oldest first."""
    params: dict[str, Any] = {"type": pattern, "limit": 1000}
    if subject is not None:
        params["subject"] = subject
    response = client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def history(client: TestClient, risk: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/risks/{risk['reference']}/history")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def day(text: str) -> date:
    return date.fromisoformat(text)


def library_control(client: TestClient, title: str = "Flood barrier") -> int:
    """A control of the library, applied to no risk: the id an action names."""
    response = client.post("/api/v1/controls", json=control_body(title=title))
    assert response.status_code == 201, response.text
    control_id: int = response.json()["id"]
    return control_id
