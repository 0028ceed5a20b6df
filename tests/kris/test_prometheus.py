"""KRIs pulled from a real Prometheus server (Debian's `prometheus`), scraping an exporter the test serves: a value
above red turns the KRI red and, with no person involved, the linked risk is due for review, its owner is told and
the quarter's movements show it."""

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from sqlalchemy import Engine
from sqlmodel import Session, update

from riskops.config import Settings
from riskops.db import Database
from riskops.kris.models import Kri
from riskops.worker import Worker
from tests.conftest import Keys
from tests.helpers import debian_binary, free_port, wait_for
from tests.kris.helpers import OWNER, add_kri, add_risk, mail_to

PROMETHEUS = Path("/usr/bin/prometheus")


@pytest.fixture
def prometheus_binary() -> Path:
    return debian_binary(PROMETHEUS, "prometheus", "RISKOPS_REQUIRE_PROMETHEUS")


@pytest.fixture
def exporter() -> Iterator[tuple[Gauge, int]]:
    """A small exporter on a free loopback port, with one gauge the test sets."""
    registry = CollectorRegistry()
    gauge = Gauge("portal_failed_logins_per_minute", "Sign-in failures in the last minute.", registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield gauge, port
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def prometheus(prometheus_binary: Path, exporter: tuple[Gauge, int], tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the exporter every second; yields its base URL once it answers."""
    config = tmp_path / "prometheus.yml"
    target = f"127.0.0.1:{exporter[1]}"
    config.write_text(
        yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "portal", "static_configs": [{"targets": [target]}]}],
        })
    )  # fmt: skip
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(prometheus_binary), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                assert process.poll() is None, log_path.read_text()
                try:
                    return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for("Prometheus to start", ready, timeout=30)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def _query(base: str, promql: str) -> list[Any]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    result: list[Any] = answer["data"]["result"]
    return result


def _quarter(now: datetime) -> str:
    return f"{now.year}Q{(now.month - 1) // 3 + 1}"


def test_a_kri_fed_by_prometheus_turns_red_and_pulls_its_risk_into_review(
    client: TestClient, engine: Engine, keys: Keys, prometheus: str, exporter: tuple[Gauge, int]
) -> None:
    gauge, _ = exporter
    promql = "max(portal_failed_logins_per_minute)"
    risk = add_risk(client, title="Customer accounts taken over")
    kri = add_kri(client, source="prometheus", query=promql, frequency=1, risks=[risk["reference"]])
    assert kri["reference"] == "K-0001" and kri["status"] is None
    quarter = _quarter(datetime.now(UTC))
    assert client.post("/api/v1/reviews", json={"cycle": quarter}, headers=keys.headers("admin")).status_code == 201

    settings = Settings(scheduler_enabled=False, smtp_host=None, prometheus_url=prometheus)
    worker = Worker(Database(engine), settings)
    try:
        gauge.set(20)  # green first: news to no one
        wait_for(
            "Prometheus to scrape 20",
            lambda: [r for r in _query(prometheus, promql) if r["value"][1] == "20"],
            timeout=30,
        )
        assert worker.tick()["periodic"] >= 1
        green = client.get("/api/v1/kris/K-0001").json()
        assert green["status"] == "green" and green["last_value"] == 20 and green["last_pull_error"] is None
        assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] == "green"
        before = client.get(f"/api/v1/risks/{risk['id']}").json()["next_review_at"]

        gauge.set(180)  # above red (100)
        wait_for(
            "Prometheus to scrape 180",
            lambda: [r for r in _query(prometheus, promql) if r["value"][1] == "180"],
            timeout=30,
        )
        with Session(engine) as session:  # the next pull is due now (a pull a minute otherwise)
            session.exec(update(Kri).values(next_pull_at=datetime.now(UTC)))
            session.commit()
        began = datetime.now(UTC)
        worker.tick()
        worker.tick()  # the review reminders the reassessment planned are due: they go out
    finally:
        worker.pool.shutdown()
        worker.client.close()

    red = client.get("/api/v1/kris/K-0001").json()
    assert red["status"] == "red" and red["last_value"] == 180
    read = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert read["kri_status"] == "red"
    due = datetime.fromisoformat(read["next_review_at"])
    assert read["next_review_at"] != before and began <= due <= datetime.now(UTC)
    assert read["overdue"] is True
    history = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]
    assert history[-1]["action"] == "reassessment_requested" and "K-0001" in history[-1]["note"]
    assert "turned red" in history[-1]["note"] and history[-1]["actor"] == "scheduler"
    events = client.get("/api/v1/events", params={"type": "kri.red"}).json()["items"]
    assert [e["data"]["risks"][0]["reference"] for e in events] == [risk["reference"]]
    subjects = mail_to(engine, OWNER)
    assert f"[riskops] {risk['reference']} is due for review" in subjects

    moved = client.get(f"/api/v1/reviews/{quarter}/movements").json()
    [turned] = moved["kris_turned_red"]
    assert turned["kri"] == "K-0001" and turned["from"] == "green" and turned["value"] == 180
    assert turned["risks"] == [risk["reference"]]
    assert moved["kris_recovered"] == []


def test_a_pull_that_gives_no_single_finite_value_is_recorded_on_the_kri_and_tried_next_period(
    client: TestClient, engine: Engine, prometheus: str, exporter: tuple[Gauge, int]
) -> None:
    queries = {
        "K-0001": 'label_replace(vector(1), "site", "a", "", "") or label_replace(vector(2), "site", "b", "", "")',
        "K-0002": "sum(",
        "K-0003": "scalar(vector(0)) / 0",
        "K-0004": "absent_metric_never_scraped",
        "K-0005": "scalar(vector(7))",
    }
    for promql in queries.values():
        add_kri(client, source="prometheus", query=promql, frequency=5)
    settings = Settings(scheduler_enabled=False, smtp_host=None, prometheus_url=prometheus)
    worker = Worker(Database(engine), settings)
    try:
        assert worker.tick()["periodic"] >= 1
        pulled = {ref: client.get(f"/api/v1/kris/{ref}").json() for ref in queries}
        assert worker.tick()["periodic"] == 0  # claimed and moved on: the next pull is five minutes away
    finally:
        worker.pool.shutdown()
        worker.client.close()
    assert "2 series" in pulled["K-0001"]["last_pull_error"]
    assert "Prometheus answered 400" in pulled["K-0002"]["last_pull_error"]
    assert "finite" in pulled["K-0003"]["last_pull_error"]
    assert "0 series" in pulled["K-0004"]["last_pull_error"]
    assert pulled["K-0005"]["last_pull_error"] is None and pulled["K-0005"]["status"] == "green"
    assert pulled["K-0005"]["last_value"] == 7
    for ref in ("K-0001", "K-0002", "K-0003", "K-0004"):
        assert pulled[ref]["status"] is None and pulled[ref]["last_pull_at"] is not None


def test_an_unreachable_prometheus_is_an_error_on_the_kri_not_a_crash(client: TestClient, engine: Engine) -> None:
    add_kri(client, source="prometheus", query="up", frequency=5)
    settings = Settings(scheduler_enabled=False, smtp_host=None, prometheus_url=f"http://127.0.0.1:{free_port()}")
    worker = Worker(Database(engine), settings)
    try:
        assert worker.tick()["periodic"] >= 1
    finally:
        worker.pool.shutdown()
        worker.client.close()
    kri = client.get("/api/v1/kris/K-0001").json()
    assert kri["last_pull_error"].startswith("Prometheus could not be reached") and kri["status"] is None
