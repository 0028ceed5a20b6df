"""Prometheus pulls are claimed once across workers: any number of them ticking at once query each due KRI once per
period (the answers here come from a small HTTP server that counts the queries it is asked)."""

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.config import Settings
from riskops.db import Database
from riskops.kris import prometheus
from tests.kris.helpers import add_kri


@pytest.fixture
def counting_server() -> Iterator[tuple[str, Counter[str]]]:
    """Answers every instant query with the scalar 7, counting the queries by their text."""
    asked: Counter[str] = Counter()
    lock = threading.Lock()

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            query = parse_qs(urlsplit(self.path).query)["query"][0]
            with lock:
                asked[query] += 1
            sample = [datetime.now(UTC).timestamp(), "7"]
            body = json.dumps({"status": "success", "data": {"resultType": "scalar", "result": sample}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    thread.join(timeout=5)


def test_workers_ticking_at_once_pull_each_due_kri_once(
    client: TestClient, engine: Engine, counting_server: tuple[str, Counter[str]]
) -> None:
    url, asked = counting_server
    queries = [f"scalar(vector({n}))" for n in range(12)]
    for promql in queries:
        add_kri(client, source="prometheus", query=promql, frequency=60)
    settings = Settings(scheduler_enabled=False, smtp_host=None, prometheus_url=url)
    start = threading.Barrier(4)

    def pull() -> None:
        start.wait()
        prometheus.pull_due(Database(engine), settings)

    workers = [threading.Thread(target=pull) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert asked == Counter(queries)  # each once, by whichever worker claimed it
    kris = client.get("/api/v1/kris", params={"limit": 50}).json()["items"]
    assert [k["last_value"] for k in kris] == [7] * 12 and all(k["last_pull_error"] is None for k in kris)
