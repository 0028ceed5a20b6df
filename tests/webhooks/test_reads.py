"""The read model of the delivery log answers byte for byte what the ORM path (service.list_deliveries, dumped
as the route did: JSON mode, excerpts left out below admin, Starlette's JSONResponse) answers, with one
statement per page."""

import json
from datetime import timedelta
from itertools import product
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops.errors import NotFound, Unprocessable
from riskops.events.models import Delivery, DeliveryStatus
from riskops.pagination import Page, encode_cursor
from riskops.webhooks import reads, service
from riskops.webhooks.models import DeliveryAttempt, DeliveryPublic
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import statements
from tests.receiver import receiver
from tests.webhooks.support import WEBHOOKS, create_risk, subscribe

# What the route left out of the page for keys below admin.
EXCERPTS = {"items": {"__all__": {"attempt_log": {"__all__": {"response_excerpt"}}}}}
# Latencies either side of every float format switch (json.dumps writes 1e-05, orjson 0.00001), and full ones.
LATENCIES = [0.0, 1e-05, 9.99e-05, 0.0001, 12.345678901234567, 0.30000000000000004, 1e16, 5e-324, 123.45, 7.0]
EXCERPT_TEXTS = ['Über "alles" — 🌊\n\t\\ </script>\u2028\x01\x1f', "", None, '{"ok": true}']


@pytest.fixture
def subscriptions(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock, worker: Worker
) -> tuple[int, int]:
    """A subscription whose log has deliveries pending, succeeded and failed, with no attempt, one or several
    (real ones to a receiver, and logged odd ones), excerpts and errors; and one whose log is empty."""
    with receiver() as r:
        busy = subscribe(client, keys, r.url, ["risk.*", "incident.*"])["id"]
        empty = subscribe(client, keys, r.url, ["risk.acceptance_voided"])["id"]
        r.script = [(500, {}, "boom ü".encode()), (410, {}, b""), (200, {}, "ok ✓".encode())]
        for i in range(4):
            frozen_clock.advance(timedelta(seconds=1, microseconds=123450 * (i % 2)))
            create_risk(client, title=f"Risk {i}")
        worker.tick()
        frozen_clock.advance(timedelta(minutes=1))
        client.post(f"{WEBHOOKS}/{busy}/resume", headers=keys.headers("admin"))  # disabled by the 410
        for i in range(6):
            incident = client.post("/api/v1/incidents", json={"title": f"Outage {i}", "severity": "SEV2"})
            assert incident.status_code == 201, incident.text
        r.default = (503, {}, b"busy")
        worker.tick()
    with Session(engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.subscription_id == busy).order_by(col(Delivery.id)))
        logged = list(rows)[-6:]
        # Attempts logged in turn across deliveries, so that each delivery's attempt ids are not consecutive.
        for n, (latency, delivery) in enumerate(product(LATENCIES, logged[:3])):
            frozen_clock.advance(timedelta(seconds=3, microseconds=n % 2))
            session.add(
                DeliveryAttempt(
                    delivery_id=delivery.id, attempted_at=frozen_clock.now, latency_ms=latency,
                    status_code=(None, 502, 200)[n % 3], error=(f"ConnectError: ✗ {n}", None, None)[n % 3],
                    response_excerpt=EXCERPT_TEXTS[n % len(EXCERPT_TEXTS)],
                )
            )  # fmt: skip
        logged[0].status, logged[0].last_error, logged[0].attempts = DeliveryStatus.failed, "gave up — ✗", 8
        logged[1].status, logged[1].delivered_at = DeliveryStatus.succeeded, frozen_clock.now
        logged[1].last_status_code = 204
        session.add_all(logged[:2])
        session.commit()
    queued = client.post("/api/v1/incidents", json={"title": "Not sent yet", "severity": "SEV4"})
    assert queued.status_code == 201, queued.text
    return busy, empty


def _orm_page(session: Session, sub_id: int, *, admin: bool, **options: Any) -> bytes:
    items, next_cursor = service.list_deliveries(session, service.get_subscription(session, sub_id), **options)
    page: Page[DeliveryPublic] = Page(items=items, next_cursor=next_cursor)
    return bytes(JSONResponse(page.model_dump(mode="json", exclude=None if admin else EXCERPTS)).body)


def test_every_page_reads_as_the_orm_shows_it_with_one_statement(
    engine: Engine, subscriptions: tuple[int, int]
) -> None:
    with Session(engine) as session:
        for sub_id, admin, limit in product(subscriptions, (True, False), (1, 4, 50)):
            cursor: str | None = None
            while True:
                options: dict[str, Any] = {"cursor": cursor, "limit": limit}
                expected = _orm_page(session, sub_id, admin=admin, **options)
                with statements(engine) as seen:
                    body = reads.read_page(session, sub_id, excerpts=admin, **options)
                assert len(seen) == 1
                assert json.loads(body) == json.loads(expected), (sub_id, admin, options)
                assert body == expected, (sub_id, admin, options)
                cursor = json.loads(body)["next_cursor"]
                if cursor is None:
                    break
        busy, empty = subscriptions
        log = json.loads(reads.read_page(session, busy, excerpts=True))["items"]
        assert json.loads(reads.read_page(session, empty, excerpts=True)) == {"items": [], "next_cursor": None}
    # The log holds every case the read model shapes differently.
    assert {d["status"] for d in log} == {"pending", "succeeded", "failed"}
    assert {d["next_attempt_at"] is None for d in log} == {True, False}
    assert {len(d["attempt_log"]) for d in log} >= {0, 1, 1 + len(LATENCIES)}
    attempts = [a for d in log for a in d["attempt_log"]]
    assert {a["latency_ms"] for a in attempts} >= set(LATENCIES)
    assert {a["response_excerpt"] for a in attempts} >= {*EXCERPT_TEXTS, "boom ü"}
    assert {a["status_code"] for a in attempts} >= {None, 500, 503, 502, 200}


def test_a_missing_subscription_and_a_bad_cursor_are_the_same_problems(
    engine: Engine, subscriptions: tuple[int, int]
) -> None:
    busy, empty = subscriptions
    bad = ["not a cursor!", encode_cursor(["x"]), encode_cursor([1, 2]), "eyJpZCI6MX0"]
    cases: list[tuple[int, str | None, type[Exception]]] = [
        *((sub_id, None, NotFound) for sub_id in (999, 0, -1, 2**31, 2**63)),
        *((999, cursor, NotFound) for cursor in bad),
        *((sub_id, cursor, Unprocessable) for sub_id, cursor in product((busy, empty), bad)),
    ]
    with Session(engine) as session:
        for sub_id, cursor, problem in cases:
            with pytest.raises(problem) as orm:
                service.list_deliveries(session, service.get_subscription(session, sub_id), cursor=cursor)
            with pytest.raises(problem) as read:
                reads.read_page(session, sub_id, cursor=cursor)
            assert (str(read.value), read.value.__dict__) == (str(orm.value), orm.value.__dict__)
        with statements(engine) as seen:
            with pytest.raises(NotFound):
                reads.read_page(session, 999)
        assert len(seen) == 1


def test_the_route_answers_the_read_model_bytes_for_each_role(
    client: TestClient, keys: Keys, engine: Engine, subscriptions: tuple[int, int]
) -> None:
    busy, _ = subscriptions
    with Session(engine) as session:
        for role in ("admin", "write", "read"):
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
                response = client.get(f"{WEBHOOKS}/{busy}/deliveries", params=params, headers=keys.headers(role))
                assert response.status_code == 200
                assert response.headers["content-type"] == "application/json"
                expected = _orm_page(session, busy, admin=role == "admin", cursor=cursor, limit=4)
                assert response.content == expected
                assert (b'"response_excerpt"' in response.content) is (role == "admin")
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break
    assert client.get(f"{WEBHOOKS}/999/deliveries").status_code == 404
    assert client.get(f"{WEBHOOKS}/999/deliveries", params={"cursor": "nonsense"}).status_code == 404
    assert client.get(f"{WEBHOOKS}/{busy}/deliveries", params={"cursor": "nonsense"}).status_code == 422


def test_the_documented_response_model_is_unchanged(client: TestClient) -> None:
    document = cast(FastAPI, client.app).openapi()
    operation = document["paths"]["/api/v1/webhooks/{sub_id}/deliveries"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Page_DeliveryPublic_"}
    schemas = document["components"]["schemas"]
    items = schemas["Page_DeliveryPublic_"]["properties"]["items"]["items"]
    assert items == {"$ref": "#/components/schemas/DeliveryPublic"}
    assert list(schemas["DeliveryPublic"]["properties"]) == list(DeliveryPublic.model_fields)
    assert [p["name"] for p in operation["parameters"]] == ["sub_id", "cursor", "limit"]
