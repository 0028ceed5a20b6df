"""The log of a real `riskops serve` with RISKOPS_LOG_FORMAT=json: every line a JSON object, one access line per
request with its id (the client's, if sane), secrets in the query redacted, routine ticks and probes below info."""

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from riskops import logs
from tests.conftest import Keys
from tests.helpers import assert_problem, running_service

TOKEN = "metrics-token-for-the-tests-0123456789"


def ticks(client: httpx.Client) -> float:
    """Ticks this serve's scheduler has finished, as /metrics counts them."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "riskops_scheduler_tick_duration_seconds_count":
                return sample.value
    return 0.0


def test_json_log_of_a_real_serve(database_url: str, keys: Keys, tmp_path: Path) -> None:
    log_path = tmp_path / "serve.log"
    secret = "hunter2-but-longer-0815"
    env = [("RISKOPS_LOG_FORMAT", "json"), ("RISKOPS_LOG_LEVEL", "info"), ("RISKOPS_METRICS_TOKEN", TOKEN)]
    env.append(("RISKOPS_SCHEDULER_TICK_SECONDS", "0.2"))
    with running_service(database_url, log_path, *env) as base, httpx.Client(base_url=base, timeout=30) as client:
        deadline = time.monotonic() + 30
        while ticks(client) < 5:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        read = keys.headers("read")
        listed = client.get("/api/v1/risks", params={"q": "flood"}, headers={**read, "X-Request-ID": "trace-4711.a"})
        leaky = client.get("/api/v1/risks", params={"q": "flood", "api_key": secret}, headers=read)  # unknown: 422
        missing = client.get("/api/v1/risks/R-9999", headers={**read, "X-Request-ID": "lb:7f3a/9=="})
        unsafe = client.get("/api/v1/risks/R-9999", headers={**read, "X-Request-ID": "two words"})
        long = client.get("/api/v1/risks/R-9999", headers={**read, "X-Request-ID": "x" * 129})
        for _ in range(3):
            assert client.get("/readyz").status_code == 200  # a probe's line is at debug
        answers = [listed, leaky, missing, unsafe, long]

    records = [json.loads(line) for line in log_path.read_text().splitlines()]  # every line is JSON
    assert records and all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    assert secret not in log_path.read_text() and keys.read not in log_path.read_text()

    assert listed.status_code == 200 and listed.headers["x-request-id"] == "trace-4711.a"
    for answer, sent in ((leaky, None), (missing, "lb:7f3a/9=="), (unsafe, None), (long, None)):
        problem = assert_problem(answer, 422 if answer is leaky else 404)
        assert problem["request_id"] == answer.headers["x-request-id"]
        if sent is None:  # none sent, or refused: one of the server's own
            assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
        else:
            assert answer.headers["x-request-id"] == sent

    access = [r for r in records if r["logger"] == "riskops.access"]
    for answer in answers:
        mine = [r for r in access if r["request_id"] == answer.headers["x-request-id"]]
        assert len(mine) == 1, access  # one line per request: uvicorn's own access log is off
        line = mine[0]
        assert line["level"] == "INFO" and line["method"] == "GET" and line["status"] == answer.status_code
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["path"].startswith(answer.request.url.path)
    leaky_line = next(r for r in access if r["request_id"] == leaky.headers["x-request-id"])
    assert leaky_line["path"] == "/api/v1/risks?q=flood&api_key=***" and leaky_line["status"] == 422
    assert not [r for r in records if r["logger"] == "uvicorn.access"]

    # Routine work stays below info: the ticks (but for one that did something), the probes, Alembic's chatter.
    tick_lines = [r for r in records if r["logger"] == "riskops.worker" and r["message"].startswith("tick ")]
    assert len(tick_lines) <= 1, tick_lines  # the first tick opens the quarter's review cycle
    assert not [r for r in records if r["logger"].startswith("apscheduler") and r["level"] == "INFO"]  # 2 a tick
    assert not [r for r in access if r["path"].startswith(("/readyz", "/metrics"))]
    assert not [r for r in records if "Context impl" in r["message"] and r["request_id"] is not None]


def test_text_lines_redact_and_carry_the_request_id() -> None:
    """The text format, in process: a secret in a logged URL is masked whoever logged it."""
    formatter, record = logs.LineFormatter(logs.FORMAT), _record("GET /feed.ics?token=rkf_abc&x=1 200")
    token = logs.request_id.set("req-1")
    try:
        line = formatter.format(record)
    finally:
        logs.request_id.reset(token)
    assert line.endswith("[req-1] GET /feed.ics?token=***&x=1 200") and "rkf_abc" not in line


def test_json_lines_redact_every_field() -> None:
    record = _record("sent to %s", "https://hooks.example/x?secret=abc")
    record.path = "/api/v1/inbound/alertmanager?token=rki_xyz"
    shown: dict[str, Any] = json.loads(logs.JsonLineFormatter().format(record))
    assert shown["message"] == "sent to https://hooks.example/x?secret=***"
    assert shown["path"] == "/api/v1/inbound/alertmanager?token=***" and shown["request_id"] is None
    assert shown["level"] == "INFO" and shown["logger"] == "riskops.test"


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("riskops.test", logging.INFO, __file__, 1, message, args, None)
