"""Processes, assets and links made over HTTP, as a continuity manager would."""

from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import risk_body

PLURAL = {"process": "processes", "asset": "assets"}


def process_body(key: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "name": key.replace("-", " ").capitalize(), "owner": "head of operations"}
    body.update(overrides)
    return body


def make_process(client: TestClient, key: str, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/processes", json=process_body(key, **overrides))
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def make_asset(client: TestClient, key: str, kind: str = "system", **overrides: Any) -> dict[str, Any]:
    body = {"key": key, "kind": kind, "name": key.replace("-", " ").capitalize(), "owner": "it operations"}
    response = client.post("/api/v1/assets", json={**body, **overrides})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def make_risk(client: TestClient, title: str, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(title=title, **overrides))
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def link(client: TestClient, risk: dict[str, Any], kind: str, ref: str) -> None:
    response = client.post(f"/api/v1/risks/{risk['reference']}/{PLURAL[kind]}", json={kind: ref})
    assert response.status_code == 201, response.text


def events(client: TestClient, event_type: str, subject: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events", params={"type": event_type, "subject": subject})
    assert response.status_code == 200, response.text
    return [e["data"] for e in response.json()["items"]]


def history(client: TestClient, path: str) -> list[dict[str, Any]]:
    response = client.get(f"{path}/history")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["items"]
    return entries
