"""The read model of the event stream answers byte for byte what the ORM path (service.list_events and
service.present, serialised by FastAPI) answers, with one statement per page."""

import json
from datetime import timedelta
from itertools import product
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.errors import Unprocessable
from riskops.events import reads, service
from riskops.events.models import EventPublic
from riskops.pagination import Page, encode_cursor
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body, statements

# FastAPI writes a response model with its TypeAdapter's dump_json: these are the bytes the ORM route answered.
_PAGE = TypeAdapter(Page[EventPublic])
TYPES = [None, "risk.created", "risk.*", "incident.*", "*", "*.created", "step.*", "webhook.test", "odd.data", "x"]
SUBJECTS = [None, "R-0001", "INC-0001", "INC-0003", "1", "nope"]
# Data no service writes, as a JSON column may still hold it: floats either side of every format switch, the
# largest integers, text beyond ASCII and control characters, keys out of order, nesting.
ODD_DATA: list[dict[str, Any]] = [
    {"z": 1, "a": [1.5, None, True, False], "m": {"y": 1e-05, "x": 0.30000000000000004, "w": 1e16, "v": -0.0}},
    {"big": 2**63 - 1, "small": -(2**63), "tiny": 5e-324},
    {"text": 'Über "alles" — 🌊\n\t\\ </script>\u2028\x00\x1f', "empty": {}, "list": []},
]
# The json module writes NaN and Infinity, which SQLite keeps (PostgreSQL's json refuses them) and orjson does
# not read.
NOT_JSON = {"nan": float("nan"), "inf": float("-inf"), "after": 1}


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def stream(
    client: TestClient, keys: Keys, engine: Engine, playbooks: Path, frozen_clock: FrozenClock, worker: Worker
) -> int:
    """Risk, incident, plan, escalation and webhook events, and some with odd data; timestamps with and without a
    fraction of a second. Returns how many events there are."""
    for i in range(3):
        frozen_clock.advance(timedelta(seconds=1, microseconds=250000 * (i % 2)))
        risk = _ok(client.post("/api/v1/risks", json=risk_body(title=f"Risk {i} ✓")))
    _ok(client.patch(f"/api/v1/risks/{risk['id']}", json={"owner": "cto"}))
    _ok(client.post("/api/v1/risks/1/close", json={"reason": "Site sold"}))
    policy = {"name": "default", "levels": [{"wait_minutes": 5, "emails": ["oncall@example.com"]}], "repeat": 1}
    _ok(client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers("admin")))
    _ok(client.post("/api/v1/incidents", json={"title": "Payments down", "severity": "SEV1", "risk_ids": [2]}))
    _ok(client.post("/api/v1/playbooks/core-service-outage/activate", json={}))
    _ok(client.post("/api/v1/incidents/INC-0001/acknowledge", json={"note": "on it"}))
    sub = _ok(client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
                          headers=keys.headers("admin")))  # fmt: skip
    _ok(client.post(f"/api/v1/webhooks/{sub['id']}/test", headers=keys.headers("admin")))
    with Session(engine) as session:
        for i, data in enumerate(ODD_DATA + ([NOT_JSON] if engine.dialect.name == "sqlite" else [])):
            service.emit(
                session, "odd.data", "incident", ("INC-0001", "INC-0003", "R-0001")[i % 3], data, fan_out=False
            )
        session.commit()
    for _ in range(3):  # escalation levels and step reminders fire
        frozen_clock.advance(timedelta(minutes=6, microseconds=1))
        worker.tick()
    with Session(engine) as session:
        rows, _ = service.list_events(session, limit=10_000)
    return len(rows)


def _orm_page(session: Session, **options: Any) -> bytes:
    rows, next_cursor = service.list_events(session, **options)
    return _PAGE.dump_json(Page(items=[service.present(e) for e in rows], next_cursor=next_cursor))


def test_every_filter_pages_as_the_orm_does_with_one_statement(engine: Engine, stream: int) -> None:
    with Session(engine) as session:
        for type_pattern, subject_id, limit in product(TYPES, SUBJECTS, (2, 1000)):
            cursor: str | None = None
            pages = 0
            while True:
                options: dict[str, Any] = {"type_pattern": type_pattern, "subject_id": subject_id}
                options.update(cursor=cursor, limit=limit)
                expected = _orm_page(session, **options)
                with statements(engine) as seen:
                    body = reads.read_page(session, **options)
                assert len(seen) == 1
                assert json.loads(body) == json.loads(expected), options
                assert body == expected, options
                pages += 1
                assert pages <= stream // limit + 1, options  # a walk must end
                cursor = json.loads(body)["next_cursor"]
                if cursor is None:
                    break
        # The walks compared real rows of every kind.
        items = json.loads(reads.read_page(session, limit=1000))["items"]
    assert len(items) == stream > 20
    kinds = {e["type"].split(".")[0] for e in items}
    assert kinds >= {"risk", "incident", "playbook", "step", "webhook", "odd"}
    assert "incident.escalated" in {e["type"] for e in items}
    assert {len(e["occurred_at"]) for e in items} == {len("2026-07-01T09:00:00Z"), len("2026-07-01T09:00:00.250000Z")}


@pytest.mark.parametrize(
    "cursor", ["not a cursor!", encode_cursor(["evt_1"]), encode_cursor([1, 2]), "eyJpZCI6MX0", encode_cursor([])]
)
def test_bad_cursors_are_the_same_422(engine: Engine, cursor: str) -> None:
    with Session(engine) as session:
        with pytest.raises(Unprocessable) as orm:
            service.list_events(session, cursor=cursor)
        with pytest.raises(Unprocessable) as read:
            reads.read_page(session, cursor=cursor)
    assert (str(read.value), read.value.__dict__) == (str(orm.value), orm.value.__dict__)


def test_the_route_answers_the_read_model_bytes(client: TestClient, engine: Engine, stream: int) -> None:
    with Session(engine) as session:
        for params in ({"limit": 3}, {"type": "incident.*", "limit": 2}, {"type": "odd.data", "subject": "R-0001"}):
            cursor = None
            while True:
                response = client.get("/api/v1/events", params={**params, **({"cursor": cursor} if cursor else {})})
                assert response.status_code == 200
                assert response.headers["content-type"] == "application/json"
                options = {"type_pattern": params.get("type"), "subject_id": params.get("subject")}
                assert response.content == _orm_page(session, **options, cursor=cursor, limit=params.get("limit", 100))
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break
    assert client.get("/api/v1/events", params={"cursor": "nonsense"}).status_code == 422


def test_the_documented_response_model_is_unchanged(client: TestClient) -> None:
    document = cast(FastAPI, client.app).openapi()
    operation = document["paths"]["/api/v1/events"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Page_EventPublic_"}
    schemas = document["components"]["schemas"]
    assert schemas["Page_EventPublic_"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/EventPublic"}
    assert list(schemas["EventPublic"]["properties"]) == list(EventPublic.model_fields)
    assert [p["name"] for p in operation["parameters"]] == ["type", "subject", "cursor", "limit"]
    assert operation["description"] == "Every event, oldest first; follow new ones by passing back next_cursor."
