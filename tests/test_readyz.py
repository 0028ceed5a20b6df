"""GET /readyz: the database and its schema, this process's scheduler (stalled: 503 with the reason) and the
webhook delivery backlog (reported, never a reason to be unready)."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.app import create_app
from riskops.config import Settings
from tests.conftest import FrozenClock, Keys
from tests.receiver import receiver
from tests.webhooks.support import create_risk, subscribe


def ready(client: TestClient, status: int = 200) -> dict[str, Any]:
    response = client.get("/readyz", headers={"Authorization": ""})  # open to probes: no key needed
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def scheduled(engine: Engine, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    """An app whose own scheduler runs (one tick at start, the next an hour later), once its first tick ended."""
    settings = Settings(scheduler_enabled=True, scheduler_tick_seconds=3600)
    with TestClient(create_app(settings, engine=engine)) as client:
        deadline = time.monotonic() + 30
        while ready(client)["scheduler"]["last_tick_at"] is None:
            assert time.monotonic() < deadline, "the first tick never ended"
            time.sleep(0.05)
        yield client


def test_a_scheduler_that_stops_ticking_makes_the_process_unready(
    scheduled: TestClient, frozen_clock: FrozenClock
) -> None:
    body = ready(scheduled)
    assert body["status"] == "ok" and body["scheduler"]["seconds_since_tick"] == 0
    stale_after = body["scheduler"]["stale_after_seconds"]
    assert stale_after == 5 * 3600  # five intervals

    frozen_clock.advance(timedelta(seconds=stale_after))  # just at the limit: still ready
    assert ready(scheduled)["scheduler"]["seconds_since_tick"] == stale_after

    frozen_clock.advance(timedelta(seconds=1))  # no tick has ended since (the next is an hour of real time away)
    stalled = ready(scheduled, 503)
    assert stalled["status"] == "unavailable"
    assert stalled["reason"] == f"scheduler stalled: no tick finished for {stale_after + 1:.0f} s"
    assert stalled["scheduler"]["seconds_since_tick"] == stale_after + 1 and stalled["schema"]


def test_a_process_without_a_scheduler_is_ready_whatever_the_clock(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    frozen_clock.advance(timedelta(days=30))
    body = ready(client)
    assert body["status"] == "ok" and body["scheduler"] is None


def test_the_delivery_backlog_is_reported_and_never_unready(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    assert ready(client)["deliveries"] == {"due": 0, "oldest_due_seconds": 0}
    with receiver() as r:
        subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)
        frozen_clock.advance(timedelta(minutes=5))
        create_risk(client, title="Second site flooded")
        frozen_clock.advance(timedelta(seconds=30))
        body = ready(client)
    assert body["status"] == "ok"
    assert body["deliveries"] == {"due": 2, "oldest_due_seconds": 330}  # the first waited 5 min 30 s


def test_the_openapi_document_describes_both_answers(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    answers, schemas = document["paths"]["/readyz"]["get"]["responses"], document["components"]["schemas"]
    ok = schemas[answers["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    unready = answers["503"]["content"]["application/json"]["schema"]
    for shape in (ok, unready):
        assert {"schema", "scheduler", "deliveries"} <= set(shape["properties"])
        assert shape["properties"]["scheduler"]["anyOf"][0] == {"$ref": "#/components/schemas/SchedulerState"}
    assert ok["required"] == ["status"] and unready["required"] == ["status", "reason"]
    assert {"SchedulerState", "DeliveryBacklog"} <= set(schemas)
    assert "stalled" not in answers["200"]["description"] and "scheduler" in answers["503"]["description"]
