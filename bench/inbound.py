"""Benchmark of inbound alerts: `.venv/bin/python bench/inbound.py` (or `make bench`).

Alertmanager bodies that open a new incident each, and retries of one body (deduplicated onto its open
incident), beside the register's read endpoint and a bare FastAPI endpoint on the same uvicorn, same run.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from register import Result, Scenario, free_port, prepare, print_beside_read, run, start_server, stop_server, wait_ready

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
            lambda: post(alert_body(f"Bench{next(groups)}", "f1")),
            expect=202,
        ),
        "alert_dup": Scenario("POST /api/v1/inbound/alertmanager (retry)", lambda: duplicate, expect=202),
    }
    results = {}
    for key in ("bare_start", "read", "alert_new", "alert_dup", "bare_end"):
        print(f"  running {key} ...", file=sys.stderr, flush=True)
        scenario = scenarios[key.removesuffix("_start").removesuffix("_end")]
        results[key] = await run(port, proc.pid, scenario, args.connections, args.warmup, args.seconds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--risks", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    with tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        secret = prepare(url, args.risks, random.Random(args.seed))
        engine = make_engine(url)
        with Database(engine).write() as session:
            data = IntegrationCreate.model_validate(
                {"name": "bench", "kind": "alertmanager", "default_route": {"risks": ["R-0001"], "severity": "SEV2"}}
            )
            _, token = integrations.create(session, data, Principal(0, "bench", Role.admin))
        engine.dispose()
        port = free_port()
        proc = start_server(url, port, tmp, cpus[0] if pinned else None)
        try:
            if pinned:
                os.sched_setaffinity(0, {cpus[1]})
            results = asyncio.run(drive(proc, port, secret, token, args))
        finally:
            stop_server(proc)
    print(f"\ninbound alerts, {args.connections} connections, {args.seconds:g} s each\n")
    return print_beside_read("riskops-inbound", results)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
