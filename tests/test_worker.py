"""Real processes: several workers on one database, and a service killed mid-delivery."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from riskops.clock import now as utcnow
from riskops.db import Database
from riskops.events.models import Event
from riskops.risks import service as risks
from riskops.risks.models import RiskCreate
from riskops.webhooks import service as webhooks
from riskops.webhooks.models import SubscriptionCreate
from tests.conftest import ADMIN, SETTINGS, Keys
from tests.helpers import free_port, risk_body
from tests.receiver import receiver

ENV = {"RISKOPS_SCHEDULER_TICK_SECONDS": "0.2", "RISKOPS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _subscribe(engine: Engine, url: str, types: list[str]) -> None:
    with Database(engine).write() as session:
        data = SubscriptionCreate.model_validate({"url": url, "event_types": types})
        webhooks.create_subscription(session, data, ADMIN, [ip_network("127.0.0.0/8")])


def _start(command: str, database_url: str, log: Path, port: int | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "riskops", command] + (["--port", str(port)] if port else [])
    env = {**os.environ, **ENV, "RISKOPS_DATABASE_URL": database_url, "RISKOPS_LOG_LEVEL": "warning"}
    return subprocess.Popen(args, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)


def test_two_workers_fire_each_due_review_once(database_url: str, engine: Engine, tmp_path: Path) -> None:
    """200 risks past their review date, two worker processes racing: 200 events, 200 deliveries, no duplicate."""
    with receiver() as r:
        _subscribe(engine, r.url, ["risk.review_due"])
        with Database(engine).write() as session:
            past = (utcnow() - timedelta(days=1)).isoformat()
            for i in range(200):
                risks.create_risk(
                    session,
                    RiskCreate.model_validate(risk_body(title=f"due {i}", next_review_at=past)),
                    ADMIN,
                    settings=SETTINGS,
                )
        workers = [_start("worker", database_url, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            _wait_for(lambda: len(r.requests) >= 200, 90, "200 deliveries")
            time.sleep(1.5)  # several more ticks of both workers: nothing further may arrive
        finally:
            for w in workers:
                w.terminate()
                w.wait(timeout=30)
        logs = "".join(p.read_text() for p in tmp_path.glob("worker*.log"))
        assert len(r.requests) == 200, logs
        assert len(set(r.ids())) == 200
    with Session(engine) as session:
        count = session.exec(select(func.count()).select_from(Event).where(Event.type == "risk.review_due")).one()
    assert count == 200


def test_killed_service_loses_no_event(database_url: str, engine: Engine, keys: Keys, tmp_path: Path) -> None:
    """SIGKILL in the middle of deliveries; after a restart every event reaches the receiver at least once."""
    with receiver() as r:
        r.delay = 0.05  # slow enough that the kill lands mid-way
        _subscribe(engine, r.url, ["risk.created"])
        port = free_port()
        env_log = tmp_path / "serve.log"
        with Database(engine).write() as session:
            for i in range(60):
                risks.create_risk(
                    session, RiskCreate.model_validate(risk_body(title=f"risk {i}")), ADMIN, settings=SETTINGS
                )
        os.environ["RISKOPS_WEBHOOK_TIMEOUT_SECONDS"] = "1"  # short leases, so the restart reclaims quickly
        try:
            server = _start("serve", database_url, env_log, port)
            _wait_for(lambda: len(r.requests) >= 10, 60, "the first deliveries")
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
            received_before_kill = len(set(r.ids()))
            assert received_before_kill < 60, "the kill came too late to test anything"
            server = _start("serve", database_url, env_log, port)
            try:
                with Session(engine) as session:
                    expected = {e.message_id for e in session.exec(select(Event).where(Event.type == "risk.created"))}
                _wait_for(lambda: expected <= set(r.ids()), 90, "every event after the restart")
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            finally:
                server.terminate()
                server.wait(timeout=30)
        finally:
            del os.environ["RISKOPS_WEBHOOK_TIMEOUT_SECONDS"]
    assert len(expected) == 60 and expected <= set(r.ids()), env_log.read_text()
