"""Retiring a KRI: it keeps its values and history, but takes no value, is neither pulled nor told stale, and has
no say in its risks' kri_status or the dashboard; put back to work, it counts again."""

from collections import Counter
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.config import Settings
from riskops.db import Database
from riskops.kris import prometheus
from riskops.worker import Worker
from tests.conftest import FrozenClock
from tests.kris.helpers import add_kri, add_risk
from tests.kris.test_pulls import counting_server  # noqa: F401 (a fixture)
from tests.kris.test_status import _events, _push


def _retire(client: TestClient, kri: dict[str, object], retired: bool) -> dict[str, object]:
    answer = client.patch(f"/api/v1/kris/{kri['reference']}", json={"retired": retired})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_retired_kri_has_no_say_until_it_is_put_back_to_work(
    client: TestClient, frozen_clock: FrozenClock, worker: Worker
) -> None:
    risk = add_risk(client)
    kri = add_kri(client, risks=[risk["reference"]], frequency="1h")
    _push(client, frozen_clock, 150)
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] == "red"

    retired = _retire(client, kri, True)
    assert datetime.fromisoformat(str(retired["retired_at"])) == frozen_clock.now
    assert retired["status"] == "red" and retired["last_value"] == 150  # its record is kept
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] is None
    refused = client.post(
        f"/api/v1/kris/{kri['reference']}/values",
        json={"values": [{"at": (frozen_clock.now + timedelta(minutes=1)).isoformat(), "value": 10}]},
    )
    assert refused.status_code == 409 and "retired" in refused.json()["detail"]
    assert [k["reference"] for k in client.get("/api/v1/kris", params={"retired": "false"}).json()["items"]] == []
    assert [k["reference"] for k in client.get("/api/v1/kris", params={"retired": "true"}).json()["items"]] == [
        kri["reference"]
    ]
    frozen_clock.advance(timedelta(hours=3))
    worker.tick()
    assert _events(client, "kri.stale") == []  # nothing is expected of it

    back = _retire(client, kri, False)
    assert back["retired_at"] is None
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] == "red"
    _push(client, frozen_clock, 10)
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] == "green"
    actions = [e["action"] for e in client.get(f"/api/v1/kris/{kri['reference']}/history").json()["items"]]
    assert actions == ["created", "retired", "reactivated"]


def test_a_retired_prometheus_kri_is_not_pulled(
    client: TestClient,
    engine: Engine,
    counting_server: tuple[str, Counter[str]],  # noqa: F811
) -> None:
    url, asked = counting_server
    kept, retired = (add_kri(client, source="prometheus", query=q, frequency=60) for q in ("vector(1)", "vector(2)"))
    _retire(client, retired, True)
    prometheus.pull_due(Database(engine), Settings(scheduler_enabled=False, smtp_host=None, prometheus_url=url))
    assert asked == Counter(["vector(1)"])
    _retire(client, retired, False)  # due again at once
    prometheus.pull_due(Database(engine), Settings(scheduler_enabled=False, smtp_host=None, prometheus_url=url))
    assert asked == Counter(["vector(1)", "vector(2)"])
    assert client.get(f"/api/v1/kris/{kept['reference']}").json()["retired_at"] is None
