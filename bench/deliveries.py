"""Benchmark of outgoing webhooks and of the scheduler tick: `.venv/bin/python bench/deliveries.py [--postgres URL]`.

1. Deliveries per second from the worker to a local receiver at several concurrency levels, beside a plain
   httpx loop posting the same bodies to the same receiver in the same run (the ratio is the cost of
   claiming, signing, checking the address and recording every attempt). On SQLite, or on PostgreSQL with
   --postgres (a database of its own is created and dropped).
2. The time of one scheduler tick over a register of 1,000,000 risks of which 1,000 are due (--risks 0 skips it).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import databases
import httpx
from register import free_port
from sqlalchemy import delete, func, insert, text, update
from sqlmodel import col, select

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.bootstrap import prepare_database
from riskops.config import Settings
from riskops.db import Database, make_engine
from riskops.events.models import Delivery, Event, PayloadFormat
from riskops.notices.models import Notice
from riskops.risks.models import Risk
from riskops.webhooks import service as webhooks
from riskops.webhooks.delivery import payload
from riskops.webhooks.models import DeliveryAttempt, SubscriptionCreate
from riskops.worker import Worker, fire_due_notices

RECEIVER_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""
ADMIN = Principal(key_id=0, name="bench", role=Role.admin)


def start_receiver(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    Path(workdir, "receiver_app.py").write_text(RECEIVER_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "receiver_app:app", "--app-dir", workdir, "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/hook"
    for _ in range(100):
        try:
            httpx.post(url, content=b"{}")
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("receiver did not start")


def deliveries(database_url: str, url: str, n: int, levels: list[int], repeat: int) -> list[dict[str, float]]:
    """Per level, the median of `repeat` rounds, each the worker and then the plain loop over the same bodies."""
    engine = make_engine(database_url)
    prepare_database(engine)
    database = Database(engine)
    with database.write() as session:
        sub = webhooks.create_subscription(
            session, SubscriptionCreate.model_validate({"url": url, "event_types": ["*"]}), ADMIN,
            [ip_network("127.0.0.0/8")],
        )  # fmt: skip
        sub_id = sub.id
    now = datetime.now(UTC)
    with engine.begin() as conn:
        body = {"id": 1, "reference": "R-0001", "title": "Benchmark risk", "level": "high", "score": 12}
        conn.execute(
            insert(Event),
            [{"type": "risk.updated", "subject_type": "risk", "subject_id": f"R-{i:04d}", "occurred_at": now,
              "data": body} for i in range(n)],
        )  # fmt: skip
        event_ids = conn.execute(select(col(Event.id))).scalars().all()
        conn.execute(
            insert(Delivery),
            [{"subscription_id": sub_id, "event_id": event_id, "status": "pending", "attempts": 0,
              "next_attempt_at": now, "created_at": now} for event_id in event_ids],
        )  # fmt: skip
    results = []
    bodies = [payload(e, PayloadFormat.standard) for e in _events(database, n)]
    for level in levels:
        rounds = [_round(database, url, bodies, level) for _ in range(repeat)]
        results.append({key: statistics.median(r[key] for r in rounds) for key in rounds[0]})
    engine.dispose()
    return results


def _round(database: Database, url: str, bodies: list[bytes], level: int) -> dict[str, float]:
    n = len(bodies)
    with database.engine.begin() as conn:  # every delivery due again
        now = datetime.now(UTC)
        conn.execute(update(Delivery).values(status="pending", attempts=0, lease_until=None, next_attempt_at=now))
        conn.execute(delete(DeliveryAttempt))
    settings = Settings(webhook_allowed_networks="127.0.0.0/8", webhook_concurrency=level)
    worker = Worker(database, settings)
    started = time.perf_counter()
    sent = worker.deliver_due()
    worker_s = time.perf_counter() - started
    worker.stop()
    assert sent == n, (sent, n)
    with database.read() as session:
        delivered = session.exec(select(func.count()).where(Delivery.status == "succeeded")).one()
    assert delivered == n, (delivered, n)
    with httpx.Client(trust_env=False) as client, ThreadPoolExecutor(level) as pool:
        started = time.perf_counter()
        codes = list(pool.map(lambda b: client.post(url, content=b).status_code, bodies))
        plain_s = time.perf_counter() - started
    assert codes.count(200) == n
    worker_per_s, plain_per_s = n / worker_s, n / plain_s
    return {"concurrency": level, "worker_per_s": worker_per_s, "plain_per_s": plain_per_s,
            "ratio": worker_per_s / plain_per_s}  # fmt: skip


def _events(database: Database, n: int) -> list[Event]:
    with database.read() as session:
        return list(session.exec(select(Event).order_by(col(Event.id)).limit(n)))


def tick_over_register(n_risks: int, n_due: int, workdir: str) -> dict[str, float | str]:
    """One tick with n_due of 2 x n_risks pending notices due; returns seconds and what the plan used."""
    engine = make_engine(f"sqlite:///{workdir}/tick.db")
    prepare_database(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with engine.begin() as conn:
        for first in range(0, n_risks, 50_000):
            rows, notices = [], []
            for rid in range(first + 1, min(first + 50_001, n_risks + 1)):
                due = rid <= n_due
                review = now - timedelta(hours=1) if due else now + timedelta(days=30 + rid % 300)
                rows.append({
                    "id": rid, "title": f"risk {rid}", "description": "", "category": "operational", "owner": "o",
                    "status": "open", "treatment": "mitigate", "matrix_version": 1, "inherent_likelihood": 3,
                    "inherent_impact": 3, "inherent_score": 9, "inherent_level": "medium", "score": 9,
                    "level": "medium",
                    "created_at": now, "updated_at": now, "last_reviewed_at": now, "next_review_at": review,
                    "next_review_set_by_hand": False, "version": 1,
                })  # fmt: skip
                for kind, at in (("risk.review_due", review - timedelta(days=14)), ("risk.review_overdue", review)):
                    if due and kind == "risk.review_overdue":
                        at = now + timedelta(days=1)  # only the reminder is due: n_due notices in all
                    notices.append({"kind": kind, "subject_type": "risk", "subject_id": rid,
                                    "ref": review.isoformat(), "due_at": at, "data": {}})  # fmt: skip
            conn.execute(insert(Risk), rows)
            conn.execute(insert(Notice), notices)
    seed_s = time.perf_counter() - started
    with engine.connect() as conn:
        plan = conn.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT id FROM notice WHERE fired_at IS NULL AND due_at <= :now "
                "ORDER BY due_at, id LIMIT 500"
            ),
            {"now": now.replace(tzinfo=None)},
        ).all()  # fmt: skip
    database = Database(engine)
    settings = Settings()
    started = time.perf_counter()
    fired = fire_due_notices(database, settings)
    tick_s = time.perf_counter() - started
    started = time.perf_counter()
    idle = fire_due_notices(database, settings)
    idle_s = time.perf_counter() - started
    engine.dispose()
    assert fired == n_due and idle == 0, (fired, idle)
    return {"seed_s": seed_s, "tick_s": tick_s, "fired": fired, "idle_tick_s": idle_s,
            "plan": " | ".join(str(row[-1]) for row in plan)}  # fmt: skip


def report(backend: str, n: int, rows: list[dict[str, float]]) -> None:
    print(f"\nwebhook deliveries to a local uvicorn receiver, {backend} ({n} per level)\n")
    print(f"{'concurrency':>12}{'worker/s':>11}{'httpx/s':>11}{'ratio':>8}")
    for row in rows:
        print(f"{row['concurrency']:>12.0f}{row['worker_per_s']:>11.0f}{row['plain_per_s']:>11.0f}{row['ratio']:>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--levels", default="1,4,16", help="worker concurrency levels")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per level (the medians are shown)")
    parser.add_argument(
        "--postgres", metavar="URL", help="deliver on PostgreSQL: a database of its own is made through this admin URL"
    )
    parser.add_argument("--risks", type=int, default=1_000_000, help="register size for the tick (0: no tick)")
    parser.add_argument("--due", type=int, default=1000)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    backend = "PostgreSQL" if args.postgres else "SQLite"
    summary: dict[str, object] = {"benchmark": "riskops-deliveries", "database": backend.lower()}
    with tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp:
        receiver, url = start_receiver(tmp)
        try:
            with databases.fresh(args.postgres, tmp, "deliveries") as database_url:
                rows = deliveries(database_url, url, args.deliveries, levels, args.repeat)
            report(backend, args.deliveries, rows)
            summary["levels"] = rows
            summary |= {f"ratio_at_{row['concurrency']:.0f}": round(row["ratio"], 3) for row in rows}
        finally:
            receiver.terminate()
            receiver.wait()
        if args.risks:
            print(f"\nseeding {args.risks} risks with 2 notices each, {args.due} due ...", flush=True)
            tick = tick_over_register(args.risks, args.due, tmp)
            print(
                f"one tick: {tick['fired']} notices fired in {tick['tick_s'] * 1000:.0f} ms (an idle tick after it: "
                f"{tick['idle_tick_s'] * 1000:.1f} ms); seeded in {tick['seed_s']:.0f} s"
            )
            print(f"query plan: {tick['plan']}")
            summary["tick"] = tick
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RISKOPS_LOG_LEVEL", "warning")
    sys.exit(main())
