"""Benchmark of the console's register page: `.venv/bin/python bench/console.py [--postgres URL]`.

The register page of 50 rows (HTML, for a signed-in user) beside the JSON list endpoint for the same page, both
with the same session cookie, on the same `riskops serve`, in the same run; and the JSON list with an API key, as
the API's users call it. The issue's bound: the page costs at most 2x the JSON list (cost = 1 / throughput).
Cost is the server's CPU time per request (its user and system time over the window, divided by the requests
answered): unlike requests per second it holds still when the host lends the core elsewhere (steal time); the
ratio of throughputs is printed beside it. The last line of output is one JSON object with all figures.
"""

import argparse
import asyncio
import itertools
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import databases
from register import (
    CATEGORIES,
    Result,
    Scenario,
    exchange,
    load_options,
    prepare,
    run_all,
    serve_and_drive,
    wait_ready,
)

from riskops.apikeys.models import Role
from riskops.config import Settings
from riskops.db import Database, make_engine
from riskops.users import service as users
from riskops.users.models import UserCreate

PASSWORD = "bench password long enough"
FILTER = "status=open&sort=-score&category="


def signed_in_cookie(url: str) -> str:
    """A user and a session made through the users service, as the sign-in form makes them."""
    engine = make_engine(url)
    try:
        database = Database(engine)
        with database.write() as session:
            user = users.create_user(session, UserCreate(email="bench@example.org", role=Role.read), actor="bench")
            users.set_password(session, user, PASSWORD, actor="bench")
        with database.write() as session:
            signed = users.sign_in(session, "bench@example.org", PASSWORD, Settings())
        assert signed is not None
        return signed.token
    finally:
        engine.dispose()


async def drive(
    proc: subprocess.Popen[bytes], port: int, secret: str, cookie: str, args: argparse.Namespace
) -> dict[str, Result]:
    await wait_ready(proc, port)
    host = f"Host: 127.0.0.1:{port}\r\n"
    by_cookie = f"Cookie: {users.SESSION_COOKIE}={cookie}\r\n"

    def rotating(path: str, headers: str) -> Scenario:
        categories = itertools.cycle(CATEGORIES)  # no single category's page stays hot
        return Scenario(path, lambda: f"GET {path}{next(categories)} HTTP/1.1\r\n{host}{headers}\r\n".encode())

    scenarios = {
        "bare": Scenario("GET /bench/bare", lambda: f"GET /bench/bare HTTP/1.1\r\n{host}\r\n".encode()),
        "json_key": rotating(f"/api/v1/risks?limit=50&{FILTER}", f"Authorization: Bearer {secret}\r\n"),
        "json": rotating(f"/api/v1/risks?limit=50&{FILTER}", by_cookie),
        "page": rotating(f"/console/risks?{FILTER}", f"{by_cookie}Accept: text/html\r\n"),
    }
    # A page that is not the register (a redirect to sign in, an error) would be measured as meaningless speed.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status, body = await exchange(reader, writer, scenarios["page"].make())
    writer.close()
    if status != 200 or body.count(b'href="/console/risks/') < 50:
        raise RuntimeError(f"the register page did not show 50 risks: {status} {body[:300]!r}")
    return await run_all(proc, port, scenarios, ("bare_start", "json_key", "json", "page", "bare_end"), args)


def cpu_ms(result: Result) -> float:
    """The server's CPU milliseconds per request answered in the window."""
    return 1000 * result.server_cpu * result.seconds / max(1, len(result.latencies))


def main() -> int:
    args = load_options(__doc__.split("\n\n")[0], 100_000)
    with (
        tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp,
        databases.fresh(args.postgres, tmp, "console") as url,
    ):
        secret = prepare(url, args.risks, random.Random(args.seed))
        cookie = signed_in_cookie(url)
        results = serve_and_drive(url, tmp, lambda proc, port: drive(proc, port, secret, cookie, args))
    bare = (results["bare_start"].rps + results["bare_end"].rps) / 2
    print(f"\nconsole register page, {args.risks:,} risks, {args.connections} connections, {args.seconds:g} s each\n")
    print(f"{'scenario':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs bare':>9}{'CPU ms':>9}{'errors':>8}")
    summary = {}
    for key, r in results.items():
        errors = sum(r.errors.values())
        print(
            f"{key:<12}{r.rps:>9.0f}{r.pct_ms(0.5):>9.2f}{r.pct_ms(0.99):>9.2f}{r.rps / bare:>9.3f}"
            f"{cpu_ms(r):>9.2f}{errors:>8}"
        )
        summary[key] = {
            "rps": round(r.rps, 1), "p99_ms": round(r.pct_ms(0.99), 2), "cpu_ms": round(cpu_ms(r), 3), "errors": errors
        }  # fmt: skip
    cost = cpu_ms(results["page"]) / cpu_ms(results["json"])
    by_throughput = results["json"].rps / results["page"].rps
    print(
        f"\nthe page costs {cost:.2f}x the JSON list of the same 50 risks in server CPU per request "
        f"({by_throughput:.2f}x by throughput; bound: at most 2x)"
    )
    database = "postgresql" if args.postgres else "sqlite"
    figures = {
        "benchmark": "console", "database": database, "page_vs_json": round(cost, 3),
        "page_vs_json_throughput": round(by_throughput, 3), "scenarios": summary,
    }  # fmt: skip
    print(json.dumps(figures))
    return 1 if any(v["errors"] for v in summary.values()) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
