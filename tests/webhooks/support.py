"""Small helpers shared by the webhook tests: subscribing, reading deliveries, verifying what a receiver got."""

import json
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from tests.conftest import Keys
from tests.helpers import risk_body
from tests.receiver import Received

WEBHOOKS = "/api/v1/webhooks"


def subscribe(client: TestClient, keys: Keys, url: str, event_types: list[str], **extra: Any) -> dict[str, Any]:
    """A new subscription (as admin); the answer, secret included."""
    response = client.post(
        WEBHOOKS, json={"url": url, "event_types": event_types, **extra}, headers=keys.headers("admin")
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def subscription(client: TestClient, keys: Keys, sub_id: int) -> dict[str, Any]:
    response = client.get(f"{WEBHOOKS}/{sub_id}", headers=keys.headers("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def deliveries(
    client: TestClient, sub_id: int, limit: int = 50, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Newest first, each with its attempt_log (as the client's key sees them: excerpts for admins only)."""
    response = client.get(f"{WEBHOOKS}/{sub_id}/deliveries", params={"limit": limit}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def only_delivery(client: TestClient, sub_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    items = deliveries(client, sub_id, headers=headers)
    assert len(items) == 1, items
    return items[0]


def events(client: TestClient, type_pattern: str | None = None) -> list[dict[str, Any]]:
    params = {"type": type_pattern} if type_pattern else {}
    response = client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def create_risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def verify(secret: str, request: Received) -> dict[str, Any]:
    """The body, once the Standard Webhooks library has checked its signature and timestamp (raises otherwise)."""
    headers = {name: request.headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    body: dict[str, Any] = Webhook(secret).verify(request.body, headers)
    return body


def types(requests: list[Received]) -> list[str]:
    """The event types of standard-format requests, in arrival order."""
    return [json.loads(r.body)["type"] for r in requests]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)
