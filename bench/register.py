"""Benchmark of the risk register API: `.venv/bin/python bench/register.py` (or `make bench`).

Seeds a fresh register (SQLite, or PostgreSQL with --postgres) with --risks risks straight through
SQLAlchemy Core, starts the real service under uvicorn in a subprocess (riskops' app plus a bare endpoint,
see bench/app.py), and drives it over loopback with a small keep-alive HTTP/1.1 client on raw asyncio
sockets. The server is pinned to one core and this process to the other, so they do not steal each other's time.

Every scenario is reported as requests/s, p50 and p99 latency, and its throughput relative to the bare
endpoint measured in the same run (before and after the others; the mean is used). The last line of
output is one JSON object with all figures.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import databases
from sqlalchemy import Engine, text

from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.apikeys.service import create_key
from riskops.bootstrap import prepare_database
from riskops.db import Database, make_engine, table_of
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import Risk, RiskAssessment, RiskTag

REPO = Path(__file__).resolve().parent.parent

CATEGORIES = ("operational", "security", "compliance", "financial", "strategic", "supplier", "people", "technology")
OWNERS = tuple(
    f"{first}.{last}"
    for first in ("ana", "ben", "chen", "dara", "eli", "femi", "gita", "hugo", "ines", "jon")
    for last in ("smith", "okafor", "garcia", "novak", "tanaka")
)  # 50 owners
TAGS = tuple("gdpr sox iso27001 cloud vendor ransomware payments hr datacenter legacy ai bcp".split())
TREATMENTS, TREATMENT_WEIGHTS = ("avoid", "mitigate", "transfer", "accept"), (5, 70, 10, 15)
THREATS = ("outage", "data breach", "fraud", "regulatory fine", "key-person loss", "supplier failure", "cost overrun")
ASSETS = ("billing platform", "customer database", "payroll", "warehouse systems", "mobile app", "core ledger")


# ---- seeding ----


def rate(which: str, likelihood: int, impact: int, spec: MatrixSpec) -> dict[str, Any]:
    """The four stored columns of a rating; the level comes from the matrix, as the service would set it."""
    return {
        f"{which}_likelihood": likelihood,
        f"{which}_impact": impact,
        f"{which}_score": likelihood * impact,
        f"{which}_level": spec.level_of(likelihood, impact),
    }


def prepare(url: str, n_risks: int, rng: random.Random) -> str:
    """Schema, default matrix, an admin key (returned) and n_risks seeded risks."""
    engine = make_engine(url)
    try:
        prepare_database(engine)
        with Database(engine).write() as session:
            _, secret = create_key(session, ApiKeyCreate(name="bench", role=Role.admin), created_by="bench")
            spec = matrices.current(session).parsed()
        seed_risks(engine, spec, n_risks, rng)
    finally:
        engine.dispose()
    return secret


def seed_risks(engine: Engine, spec: MatrixSpec, n: int, rng: random.Random) -> None:
    """Core executemany with explicit ids: one INSERT statement per table instead of 100k ORM flushes."""
    now = datetime.now(UTC)
    interval = {lv.name: timedelta(days=lv.review_interval_days) for lv in spec.levels}
    risks: list[dict[str, Any]] = []
    assessments: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    for rid in range(1, n + 1):
        ratings = rate("inherent", rng.randint(1, 5), rng.randint(1, 5), spec)
        if rng.random() < 0.6:  # most risks have controls that lower the rating
            il, ii = ratings["inherent_likelihood"], ratings["inherent_impact"]
            ratings |= rate("residual", rng.randint(1, il), rng.randint(1, ii), spec)
        else:
            ratings |= dict.fromkeys(("residual_likelihood", "residual_impact", "residual_score", "residual_level"))
        current = "residual" if ratings["residual_score"] is not None else "inherent"
        level = ratings[f"{current}_level"]
        category, owner = rng.choice(CATEGORIES), rng.choice(OWNERS)
        treatment = rng.choices(TREATMENTS, TREATMENT_WEIGHTS)[0]
        created = now - timedelta(days=rng.uniform(30, 1500))
        reviewed = created + (now - created) * rng.random()
        by_hand = rng.random() < 0.05
        # Follows the level's cadence, so next reviews fall both in the past (overdue) and the future.
        next_review = now + timedelta(days=rng.uniform(-60, 180)) if by_hand else reviewed + interval[level]
        closed_at = reviewed + timedelta(days=rng.uniform(0, 20)) if rng.random() < 0.1 else None
        accepted = treatment == "accept"
        threat, asset = rng.choice(THREATS), rng.choice(ASSETS)
        risks.append(
            ratings
            | {
                "id": rid,
                "title": f"{threat.capitalize()} of {asset} ({category} #{rid})",
                "description": f"A {threat} affecting the {asset} would disrupt {category} objectives.",
                "category": category,
                "owner": owner,
                "status": "open" if closed_at is None else "closed",
                "treatment": treatment,
                "matrix_version": 1,
                "score": ratings[f"{current}_score"],
                "level": level,
                "acceptance_approver": rng.choice(OWNERS) if accepted else None,
                "acceptance_expires_at": now + timedelta(days=rng.uniform(-30, 365)) if accepted else None,
                "created_at": created,
                "updated_at": closed_at or reviewed,
                "last_reviewed_at": reviewed,
                "next_review_at": next_review,
                "next_review_set_by_hand": by_hand,
                "closed_at": closed_at,
                "closure_reason": None if closed_at is None else "Retired with the asset",
                "version": 1,
            }
        )
        assessments.append(
            ratings
            | {
                "id": rid,
                "risk_id": rid,
                "kind": "initial",
                "matrix_version": 1,
                "rationale": "Initial assessment",
                "assessed_by": owner,
                "assessed_at": created,
            }
        )
        tags.extend({"risk_id": rid, "tag": t} for t in rng.sample(TAGS, rng.randint(0, 3)))
    with databases.seeding(engine), engine.begin() as conn:
        conn.execute(table_of(Risk).insert(), risks)
        conn.execute(table_of(RiskAssessment).insert(), assessments)
        conn.execute(table_of(RiskTag).insert(), tags)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM risk")).scalar_one() == n


# ---- server ----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, workdir: str, cpu: int | None) -> subprocess.Popen[bytes]:
    """`riskops serve` itself (migrations, playbooks, logging with the access log, the scheduler, the collector
    tuned), serving bench.app:create, the same app with the bare endpoint added; its log goes to a file."""
    cmd = [sys.executable, "-m", "riskops", "serve", "--app", "bench.app:create", "--port", str(port)]
    # Pinned before exec, so every thread of the server (the sync endpoints' pool too) inherits it.
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    env = {
        **os.environ, "RISKOPS_DATABASE_URL": url, "RISKOPS_HOST": "127.0.0.1",
        "RISKOPS_PLAYBOOKS_DIR": str(REPO / "playbooks"), "PYTHONPATH": str(REPO),
    }  # fmt: skip
    with open(Path(workdir) / "server.log", "ab") as log:  # the child keeps its own copy of the descriptor
        # cwd: no stray .env is read
        return subprocess.Popen(cmd, cwd=workdir, env=env, preexec_fn=pin, stdout=log, stderr=subprocess.STDOUT)


def load_options(description: str, risks: int) -> argparse.Namespace:
    """The options every load benchmark takes; SIGTERM runs the caller's finally (never orphan the server)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--risks", type=int, default=risks, help=f"risks to seed (default {risks})")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for data and request mix")
    parser.add_argument(
        "--postgres", metavar="URL", help="run on PostgreSQL: a database of its own is made through this admin URL"
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return parser.parse_args()


def serve_and_drive(
    url: str, workdir: str, drive: Callable[[subprocess.Popen[bytes], int], Coroutine[Any, Any, dict[str, "Result"]]]
) -> dict[str, "Result"]:
    """Run the app under test on one core and `drive` it from the other (when there are two), then stop it."""
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    port = free_port()
    proc = start_server(url, port, workdir, cpus[0] if pinned else None)
    try:
        if pinned:
            os.sched_setaffinity(0, {cpus[1]})
        return asyncio.run(drive(proc, port))
    finally:
        stop_server(proc)


async def run_all(
    proc: subprocess.Popen[bytes], port: int, scenarios: dict[str, "Scenario"], order: tuple[str, ...],
    args: argparse.Namespace,
) -> dict[str, "Result"]:  # fmt: skip
    """Each scenario in `order`; bare_start and bare_end both run "bare", so the machine's drift shows."""
    results: dict[str, Result] = {}
    for key in order:
        print(f"  running {key} ...", file=sys.stderr, flush=True)
        scenario = scenarios[key.removesuffix("_start").removesuffix("_end")]
        results[key] = await run(port, proc.pid, scenario, args.connections, args.warmup, args.seconds)
    return results


def print_beside_read(name: str, results: dict[str, "Result"], args: argparse.Namespace) -> int:
    """A table of every scenario as a ratio to the bare endpoint and to the register's read; 1 if any erred."""
    bare = (results["bare_start"].rps + results["bare_end"].rps) / 2
    read = results["read"].rps
    print(f"{'scenario':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs bare':>9}{'vs read':>9}{'errors':>8}")
    summary = {}
    for key, r in results.items():
        errors = sum(r.errors.values())
        print(
            f"{key:<12}{r.rps:>9.0f}{r.pct_ms(0.5):>9.2f}{r.pct_ms(0.99):>9.2f}{r.rps / bare:>9.3f}{r.rps / read:>9.3f}"
            f"{errors:>8}"
        )
        for message, count in r.errors.most_common(3):
            print(f"  {key}: {count} x {message}")
        summary[key] = {"rps": round(r.rps, 1), "p99_ms": round(r.pct_ms(0.99), 2), "errors": errors}
    database = "postgresql" if args.postgres else "sqlite"
    print(json.dumps({"benchmark": name, "database": database, "scenarios": summary}))
    return 1 if any(v["errors"] for v in summary.values()) else 0


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- load generator ----


class ProtocolError(Exception):
    pass


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """One request on a keep-alive connection; the service always answers with a Content-Length."""
    writer.write(request)  # tiny and one at a time, so the buffer never needs draining
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise ProtocolError("answer without Content-Length")
    length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
    return int(head[9:12]), await reader.readexactly(length)


@dataclass
class Scenario:
    name: str
    make: Callable[[], bytes]  # the next request, bytes ready to send
    expect: int = 200


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0  # share of one core over the measured window
    server_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _worker(port: int, sc: Scenario, start: float, end: float, res: Result) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (t0 := time.perf_counter()) < end:
        try:
            conn = conn or await asyncio.open_connection("127.0.0.1", port)
            status, body = await exchange(*conn, sc.make())
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError, ValueError) as exc:
            res.errors[f"{type(exc).__name__}: {exc}"[:160]] += 1
            if conn:
                conn[1].close()
            conn = None
            await asyncio.sleep(0.01)  # a dead server should not turn this into a busy loop
            continue
        t1 = time.perf_counter()
        if status != sc.expect:
            res.errors[f"{status} {body[:120]!r}"] += 1
        elif t0 >= start and t1 <= end:  # warm-up and stragglers past the end are not measured
            res.latencies.append(t1 - t0)
    if conn:
        conn[1].close()


async def run(port: int, server_pid: int, sc: Scenario, conns: int, warmup: float, seconds: float) -> Result:
    start = time.perf_counter() + warmup
    end = start + seconds
    res = Result(sc.name, seconds)

    async def sample_cpu() -> None:
        await asyncio.sleep(start - time.perf_counter())
        c0, s0 = time.process_time(), cpu_seconds(server_pid)
        await asyncio.sleep(end - time.perf_counter())
        res.client_cpu = (time.process_time() - c0) / seconds
        res.server_cpu = (cpu_seconds(server_pid) - s0) / seconds

    await asyncio.gather(sample_cpu(), *(_worker(port, sc, start, end, res) for _ in range(conns)))
    return res


async def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, _ = await exchange(reader, writer, b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            writer.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not answer /healthz in time")


def scenarios(port: int, secret: str, n_risks: int, rng: random.Random) -> dict[str, Scenario]:
    base = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {secret}\r\n"

    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\n{base}\r\n".encode()

    categories = itertools.cycle(CATEGORIES)  # rotate, so no single category's page stays hot
    created = itertools.count(1)

    def post() -> bytes:
        rating = {"likelihood": rng.randint(1, 5), "impact": rng.randint(1, 5)}
        risk = {"title": f"Bench risk {next(created)}", "category": rng.choice(CATEGORIES), "owner": "bench"}
        body = json.dumps(risk | {"inherent": rating, "tags": ["bench"]}).encode()
        head = f"POST /api/v1/risks HTTP/1.1\r\n{base}Content-Type: application/json\r\n"
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    bare = get("/bench/bare")
    high = get("/api/v1/risks?status=open&level=high&sort=-score&limit=50")
    return {
        "bare": Scenario("GET /bench/bare", lambda: bare),
        "read": Scenario("GET /api/v1/risks/{id}", lambda: get(f"/api/v1/risks/{rng.randint(1, n_risks)}")),
        "list_high": Scenario("GET /api/v1/risks?status=open&level=high&sort=-score&limit=50", lambda: high),
        "list_overdue": Scenario(
            "GET /api/v1/risks?category=X&overdue=true&sort=-score&limit=50",
            lambda: get(f"/api/v1/risks?category={next(categories)}&overdue=true&sort=-score&limit=50"),
        ),
        "create": Scenario("POST /api/v1/risks", post, expect=201),
    }


async def drive(
    proc: subprocess.Popen[bytes], port: int, secret: str, args: argparse.Namespace, rng: random.Random
) -> dict[str, Result]:
    await wait_ready(proc, port)
    sc = scenarios(port, secret, args.risks, rng)
    # An empty page would be measured as fast as it is meaningless: insist on full pages first.
    for key in ("list_high", "list_overdue"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status, body = await exchange(reader, writer, sc[key].make())
        writer.close()
        if status != 200 or len(json.loads(body)["items"]) < 50:
            raise RuntimeError(f"{sc[key].name} did not return a full page: {status} {body[:200]!r}")
    # Bare first and last: its mean is the yardstick even if the machine drifts during the run.
    return await run_all(
        proc, port, sc, ("bare_start", "read", "list_high", "list_overdue", "create", "bare_end"), args
    )


# ---- report ----


def report(results: dict[str, Result], args: argparse.Namespace, seed_s: float, machine: str) -> dict[str, Any]:
    bare = (results["bare_start"].rps + results["bare_end"].rps) / 2
    rows = {
        key: {
            "endpoint": r.name,
            "rps": round(r.rps, 1),
            "p50_ms": round(r.pct_ms(0.50), 2),
            "p99_ms": round(r.pct_ms(0.99), 2),
            "ratio_to_bare": round(r.rps / bare, 3) if bare else 0.0,
            "errors": sum(r.errors.values()),
            "client_cpu": round(r.client_cpu, 2),
            "server_cpu": round(r.server_cpu, 2),
        }
        for key, r in results.items()
    }
    print(
        f"\nriskops register benchmark on {'PostgreSQL' if args.postgres else 'SQLite'}: {args.risks} risks "
        f"(seeded in {seed_s:.1f} s), {args.connections} connections, "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s per scenario; {machine}\n"
    )
    columns = ("req/s", "p50 ms", "p99 ms", "vs bare", "errors", "cli cpu", "srv cpu")
    header = f"{'scenario':<13}" + "".join(f"{c:>9}" for c in columns) + "  endpoint"
    print(header + "\n" + "-" * len(header))
    for key, row in rows.items():
        print(
            f"{key:<13}{row['rps']:>9.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['ratio_to_bare']:>9.3f}"
            f"{row['errors']:>9}{row['client_cpu']:>9.0%}{row['server_cpu']:>9.0%}  {row['endpoint']}"
        )
    for key, r in results.items():
        for message, count in r.errors.most_common(5):
            print(f"  {key}: {count} x {message}")
    print(f"\nbare endpoint (mean of start and end): {bare:.0f} req/s; the targets: bench/targets.py")
    summary = {
        "benchmark": "riskops-register",
        "database": "postgresql" if args.postgres else "sqlite",
        "risks": args.risks,
        "connections": args.connections,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "seed_seconds": round(seed_s, 2),
        "machine": machine,
        "bare_rps": round(bare, 1),
        "scenarios": rows,
    }
    print(json.dumps(summary, separators=(",", ":")))
    return summary


def main() -> int:
    args = load_options(__doc__.split("\n\n")[0], 100_000)
    rng = random.Random(args.seed)
    # Other work on this machine skews every figure: say how busy it was and how the cores were shared.
    cores = "server and client on one core each" if len(os.sched_getaffinity(0)) >= 2 else "server and client unpinned"
    machine = f"load average {os.getloadavg()[0]:.2f}, {cores}"
    with (
        tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp,
        databases.fresh(args.postgres, tmp, "register") as url,
    ):
        t0 = time.perf_counter()
        print(f"  seeding {args.risks} risks ...", file=sys.stderr, flush=True)
        secret = prepare(url, args.risks, rng)
        seed_s = time.perf_counter() - t0
        results = serve_and_drive(url, tmp, lambda proc, port: drive(proc, port, secret, args, rng))
    summary = report(results, args, seed_s, machine)
    return 1 if any(row["errors"] for row in summary["scenarios"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
