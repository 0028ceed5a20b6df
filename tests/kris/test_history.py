"""KRI history kept small: raw values older than the retention window roll up into one row per day (min, max, mean,
last, count), claimed once an hour by any worker; the values endpoint and the chart read both."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from riskops.kris.models import KriValue
from riskops.notices.models import PeriodicRun
from riskops.worker import Worker
from tests.conftest import FrozenClock
from tests.kris.helpers import add_kri


def _push(client: TestClient, *points: tuple[datetime, float]) -> None:
    body = {"values": [{"at": at.isoformat(), "value": v} for at, v in points]}
    assert client.post("/api/v1/kris/K-0001/values", json=body).status_code == 200


def test_old_values_roll_up_into_days_once(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock, worker: Worker
) -> None:
    add_kri(client)
    march1, march2 = datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 2, 8, tzinfo=UTC)
    recent = frozen_clock.now - timedelta(days=1)
    _push(client, (march1, 10), (march1 + timedelta(hours=2), 30), (march1 + timedelta(hours=1), 20), (march2, 5),
          (recent, 1))  # fmt: skip
    worker.tick()
    points = client.get("/api/v1/kris/K-0001/values").json()
    assert [(p["resolution"], p["value"], p["count"]) for p in points] == [
        ("day", 30, 3), ("day", 5, 1), ("raw", 1, 1)
    ]  # fmt: skip
    assert (points[0]["min"], points[0]["max"], points[0]["mean"]) == (10, 30, 20)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(KriValue)).one() == 1
        assert session.exec(select(func.count()).where(PeriodicRun.job == "kri.roll_up")).one() == 1

    # A value filed late for a rolled-up day joins that day when the next hour's run comes.
    _push(client, (march1 + timedelta(hours=5), 60))
    worker.tick()  # the same hour: claimed already, nothing runs
    assert len(client.get("/api/v1/kris/K-0001/values").json()) == 4
    frozen_clock.advance(timedelta(hours=1))
    worker.tick()
    day = client.get("/api/v1/kris/K-0001/values").json()[0]
    assert (day["value"], day["count"], day["max"], day["mean"]) == (60, 4, 60, 30)
    chart = client.get("/api/v1/kris/K-0001/chart.svg").text
    assert "2026-03-01" in chart and chart.count("<polyline") == 1
    # The status stays that of the newest value: rolling up is no new measurement.
    assert client.get("/api/v1/kris/K-0001").json()["last_value"] == 1
