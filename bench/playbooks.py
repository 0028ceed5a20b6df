"""Benchmark of playbook activation: `.venv/bin/python bench/playbooks.py` (or `make bench`).

Activates the largest shipped playbook (most roles + steps + communications) over and over, beside the
register's read endpoint and a bare FastAPI endpoint on the same uvicorn in the same run.
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import databases
from register import (
    REPO,
    Result,
    Scenario,
    load_options,
    prepare,
    print_beside_read,
    run_all,
    serve_and_drive,
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
    return await run_all(proc, port, scenarios, ("bare_start", "read", "activate", "bare_end"), args)


def main() -> int:
    args = load_options(__doc__.split("\n\n")[0], 10_000)
    slug, size = largest_playbook()
    with (
        tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp,
        databases.fresh(args.postgres, tmp, "playbooks") as url,
    ):
        secret = prepare(url, args.risks, random.Random(args.seed))
        engine = make_engine(url)
        sync_playbooks(engine, PLAYBOOKS)
        engine.dispose()
        results = serve_and_drive(url, tmp, lambda proc, port: drive(proc, port, secret, slug, args))
    print(f"\nplaybook activation: '{slug}' ({size} roles + steps + communications), {args.connections} connections\n")
    return print_beside_read("riskops-playbook-activation", results, args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
