"""Steps the acceptance tests share, over HTTP."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import FrozenClock
from tests.helpers import risk_body

Json = dict[str, Any]
People = dict[str, dict[str, str]]


def ok(response: Any, status: int = 200) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    return body


def new_risk(client: TestClient, likelihood: int = 1, impact: int = 2, **overrides: Any) -> Json:
    """A risk rated once (inherent only): 1x2 is low, 3x3 medium, 3x4 high, 5x5 critical on the default matrix."""
    body = risk_body(inherent={"likelihood": likelihood, "impact": impact}, residual=None, **overrides)
    return ok(client.post("/api/v1/risks", json=body), 201)


def request(
    client: TestClient, headers: dict[str, str], clock: FrozenClock, *risks: Json, days: int = 90, **extra: Any
) -> Any:
    body = {
        "risks": [r["reference"] for r in risks], "justification": "Cheaper to carry than to treat",
        "expires_at": (clock.now + timedelta(days=days)).isoformat(), **extra,
    }  # fmt: skip
    return client.post("/api/v1/acceptances", json=body, headers=headers)


def decide(client: TestClient, acceptance: Json, action: str, headers: dict[str, str], comment: str = "") -> Any:
    body = {"comment": comment} if comment or action == "approve" else {}
    return client.post(f"/api/v1/acceptances/{acceptance['reference']}/{action}", json=body, headers=headers)


def approved(client: TestClient, clock: FrozenClock, people: People, *risks: Json, **extra: Any) -> Json:
    """Requested by ann and approved by carol (an admin): in force."""
    acceptance = ok(request(client, people["ann"], clock, *risks, **extra), 201)
    return ok(decide(client, acceptance, "approve", people["carol"]))


def events(client: TestClient, event_type: str, subject: str | None = None) -> list[Json]:
    params: dict[str, Any] = {"type": event_type, "limit": 500}
    if subject is not None:
        params["subject"] = subject
    items: list[Json] = ok(client.get("/api/v1/events", params=params))["items"]
    return items


def risk_actions(client: TestClient, risk: Json) -> list[str]:
    return [h["action"] for h in ok(client.get(f"/api/v1/risks/{risk['id']}/history"))["items"]]
