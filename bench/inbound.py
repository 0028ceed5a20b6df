"""Benchmark of inbound alerts: `.venv/bin/python bench/inbound.py` (or `make bench`).

Alertmanager bodies that open a new incident each, and retries of one body (deduplicated onto its open
incident), beside the register's read endpoint and a bare FastAPI endpoint on the same uvicorn, same run.
"""

import argparse
import itertools
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import databases
from register import Result, Scenario, load_options, prepare, print_beside_read, run_all, serve_and_drive, wait_ready

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.db import Database, make_engine
from riskops.integrations import service as integrations
from riskops.integrations.models import IntegrationCreate


def alert_body(group: str, fingerprint: str) -> bytes:
    alert = {
        "status": "firing", "labels": {"alertname": group, "service": "database", "severity": "critical"},
        "annotations": {"summary": "primary database down"}, "startsAt": "2026-11-27T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint,
    }  # fmt: skip
    body = {
        "version": "4", "groupKey": f'{{}}:{{alertname="{group}"}}', "truncatedAlerts": 0, "status": "firing",
        "receiver": "riskops", "groupLabels": {"alertname": group}, "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"], "externalURL": "http://alertmanager:9093", "alerts": [alert],
    }  # fmt: skip
    return json.dumps(body).encode()


async def drive(
    proc: subprocess.Popen[bytes], port: int, secret: str, token: str, args: argparse.Namespace
) -> dict[str, Result]:
    await wait_ready(proc, port)
    rng = random.Random(args.seed)
    host = f"Host: 127.0.0.1:{port}\r\n"
    groups = itertools.count()

    def post(body: bytes) -> bytes:
        head = f"POST /api/v1/inbound/alertmanager HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n"
        return f"{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body

    duplicate = post(alert_body("BenchDuplicate", "f0"))
    scenarios = {
        "bare": Scenario("GET /bench/bare", lambda: f"GET /bench/bare HTTP/1.1\r\n{host}\r\n".encode()),
        "read": Scenario(
            "GET /api/v1/risks/{id}",
            lambda: (
                f"GET /api/v1/risks/{rng.randint(1, args.risks)} HTTP/1.1\r\n{host}"
                f"Authorization: Bearer {secret}\r\n\r\n".encode()
            ),
        ),
        "alert_new": Scenario(
            "POST /api/v1/inbound/alertmanager (new group)",
            # A fingerprint of its own: a known one would be the same alert moving group, which is ignored.
            lambda: post(alert_body(f"Bench{(group := next(groups))}", f"f{group + 1}")),
            expect=202,
        ),
        "alert_dup": Scenario("POST /api/v1/inbound/alertmanager (retry)", lambda: duplicate, expect=202),
    }
    return await run_all(proc, port, scenarios, ("bare_start", "read", "alert_new", "alert_dup", "bare_end"), args)


def main() -> int:
    args = load_options(__doc__.split("\n\n")[0], 10_000)
    with (
        tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp,
        databases.fresh(args.postgres, tmp, "inbound") as url,
    ):
        secret = prepare(url, args.risks, random.Random(args.seed))
        engine = make_engine(url)
        with Database(engine).write() as session:
            data = IntegrationCreate.model_validate(
                {"name": "bench", "kind": "alertmanager", "default_route": {"risks": ["R-0001"], "severity": "SEV2"}}
            )
            _, token = integrations.create(session, data, Principal(0, "bench", Role.admin))
        engine.dispose()
        results = serve_and_drive(url, tmp, lambda proc, port: drive(proc, port, secret, token, args))
    print(f"\ninbound alerts, {args.connections} connections, {args.seconds:g} s each\n")
    return print_beside_read("riskops-inbound", results, args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
