"""Benchmark of playbook activation: `.venv/bin/python bench/playbooks.py` (or `make bench`).

Activates the largest shipped playbook (most roles + steps + communications) over and over, beside the
register's read endpoint and a bare FastAPI endpoint on the same uvicorn in the same run.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from register import (
    REPO,
    Result,
    Scenario,
    free_port,
    prepare,
    print_beside_read,
    run,
    start_server,
    stop_server,
    wait_ready,
)

from riskops.bootstrap import sync_playbooks
from riskops.db import make_engine
from riskops.playbooks.loader import load_paths

PLAYBOOKS = REPO / "playbooks"


def largest_playbook() -> tuple[str, int]:
    sizes = {
        p.spec.id: len(p.spec.roles) + len(p.spec.steps) + len(p.spec.communications) for p in load_paths([PLAYBOOKS])
    }
    slug = max(sizes, key=lambda s: sizes[s])
    return slug, sizes[slug]


async def drive(
    proc: subprocess.Popen[bytes], port: int, secret: str, slug: str, args: argparse.Namespace
) -> dict[str, Result]:
    await wait_ready(proc, port)
    rng = random.Random(args.seed)
    base = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {secret}\r\n"
    body = json.dumps({"risk_ids": ["R-0001"], "description": "benchmark activation"}).encode()
    activate = (
        f"POST /api/v1/playbooks/{slug}/activate HTTP/1.1\r\n{base}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    scenarios = {
        "bare": Scenario("GET /bench/bare", lambda: f"GET /bench/bare HTTP/1.1\r\n{base}\r\n".encode()),
        "read": Scenario(
            "GET /api/v1/risks/{id}",
            lambda: f"GET /api/v1/risks/{rng.randint(1, args.risks)} HTTP/1.1\r\n{base}\r\n".encode(),
        ),
        "activate": Scenario(f"POST /api/v1/playbooks/{slug}/activate", lambda: activate, expect=201),
    }
    results = {}
    for key in ("bare_start", "read", "activate", "bare_end"):
        print(f"  running {key} ...", file=sys.stderr, flush=True)
        scenario = scenarios[key.removesuffix("_start").removesuffix("_end")]
        results[key] = await run(port, proc.pid, scenario, args.connections, args.warmup, args.seconds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--risks", type=int, default=10_000, help="risks to seed (default 10000)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    slug, size = largest_playbook()
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    with tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        secret = prepare(url, args.risks, random.Random(args.seed))
        engine = make_engine(url)
        sync_playbooks(engine, PLAYBOOKS)
        engine.dispose()
        port = free_port()
        proc = start_server(url, port, tmp, cpus[0] if pinned else None)
        try:
            if pinned:
                os.sched_setaffinity(0, {cpus[1]})
            results = asyncio.run(drive(proc, port, secret, slug, args))
        finally:
            stop_server(proc)
    print(f"\nplaybook activation: '{slug}' ({size} roles + steps + communications), {args.connections} connections\n")
    return print_beside_read("riskops-playbook-activation", results)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
