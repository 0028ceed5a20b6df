"""How the risk list grows with the register: `.venv/bin/python bench/growth.py [--postgres URL]`.

Seeds a fresh register of each size (10k, 100k, 1M risks by default) through SQLAlchemy Core, refreshes the
planner's statistics the way a large import does, and times every documented filter and sort of
GET /api/v1/risks through the read model that serves it (reads.read_page: one page of 50, median of several
runs). A filter that reads an index grows with the page it returns, not with the register: the last column is
its time at the largest size over its time at the smallest, and the target is at most 3. Text search needs three
characters (the API refuses fewer), so every q= here can use the text index.

Rare values (a tag, a word in the title) are held by the same 20 risks at every size, so their page does
not grow either. The last line of output is one JSON object with all figures.
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import databases
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.bootstrap import prepare_database
from riskops.db import make_engine, table_of
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import Risk, RiskTag
from riskops.risks.queries import RiskFilter, SortKey
from riskops.risks.reads import read_page

RATIO_TARGET = 3.0
RARE = 20  # risks holding the rare tag and the rare word, at every size
BATCH = 50_000
CATEGORIES = ("operational", "security", "compliance", "financial", "strategic", "supplier", "people", "technology")
OWNERS = tuple(f"{f}.{last}" for f in ("ana", "ben", "chen", "dara", "eli") for last in ("smith", "okafor", "novak"))
TAGS = tuple("gdpr sox iso27001 cloud vendor ransomware payments hr datacenter legacy ai bcp".split())
THREATS = ("outage", "data breach", "fraud", "regulatory fine", "key-person loss", "supplier failure", "cost overrun")
ASSETS = ("billing platform", "customer database", "payroll", "warehouse systems", "mobile app", "core ledger")
TREATMENTS, TREATMENT_WEIGHTS = ("avoid", "mitigate", "transfer", "accept"), (5, 70, 10, 15)

Scenario = tuple[str, RiskFilter, SortKey]


def scenarios(spec: MatrixSpec) -> list[Scenario]:
    top = spec.levels[-1].name
    out: list[Scenario] = [(f"sort={s}", RiskFilter(), s) for s in get_args(SortKey)]
    filters: list[tuple[str, RiskFilter]] = [
        ("status=open", RiskFilter(status=["open"])),
        ("status=closed", RiskFilter(status=["closed"])),
        (f"level={top}", RiskFilter(level=[top])),
        ("treatment=avoid", RiskFilter(treatment=["avoid"])),
        ("category=Security", RiskFilter(category=["Security"])),
        ("owner=ana.smith", RiskFilter(owner=["ana.smith"])),
        ("tag=gdpr", RiskFilter(tag=["gdpr"])),
        ("tag=sanctions (rare)", RiskFilter(tag=["sanctions"])),
        ("overdue=true", RiskFilter(overdue=True)),
        ("overdue=false", RiskFilter(overdue=False)),
        ("q=outage (common)", RiskFilter(q="outage")),
        ("q=zanzibar (rare)", RiskFilter(q="zanzibar")),
    ]
    out += [(name, f, "-score") for name, f in filters]
    out += [
        ("overdue=true sort=next_review_at", RiskFilter(overdue=True), "next_review_at"),
        ("owner=ana.smith sort=next_review_at", RiskFilter(owner=["ana.smith"]), "next_review_at"),
        ("tag=sanctions sort=updated_at", RiskFilter(tag=["sanctions"]), "updated_at"),
        ("q=zanzibar sort=next_review_at", RiskFilter(q="zanzibar"), "next_review_at"),
    ]
    return out


# ---- seeding ----


def _rows(
    spec: MatrixSpec, start: int, stop: int, n: int, rng: random.Random
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    now = datetime.now(UTC)
    rare = set(range(1, n + 1, n // RARE))
    for rid in range(start, stop):
        likelihood, impact = rng.randint(1, 5), rng.randint(1, 5)
        level = spec.level_of(likelihood, impact)
        category, owner = rng.choice(CATEGORIES), rng.choice(OWNERS)
        created = now - timedelta(days=rng.uniform(30, 1500))
        closed = rng.random() < 0.1
        threat, asset = rng.choice(THREATS), rng.choice(ASSETS)
        where = " in Zanzibar" if rid in rare else ""
        risk = {
            "id": rid,
            "title": f"{threat.capitalize()} of {asset}{where} ({category} #{rid})",
            "description": f"A {threat} affecting the {asset} would disrupt {category} objectives.",
            "category": category.capitalize() if rng.random() < 0.5 else category,
            "owner": owner,
            "status": "closed" if closed else "open",
            "treatment": rng.choices(TREATMENTS, TREATMENT_WEIGHTS)[0],
            "matrix_version": 1,
            "inherent_likelihood": likelihood,
            "inherent_impact": impact,
            "inherent_score": likelihood * impact,
            "inherent_level": level,
            "score": likelihood * impact,
            "level": level,
            "created_at": created,
            "updated_at": created + timedelta(days=rng.uniform(0, 30)),
            "last_reviewed_at": created,
            "next_review_at": now + timedelta(days=rng.uniform(-60, 180)),
            "next_review_set_by_hand": False,
            "closed_at": now if closed else None,
            "version": 1,
        }
        tags = [{"risk_id": rid, "tag": t} for t in rng.sample(TAGS, rng.randint(0, 3))]
        if rid in rare:
            tags.append({"risk_id": rid, "tag": "sanctions"})
        yield risk, tags


def seed(engine: Engine, n: int) -> float:
    """n risks with tags in batches of Core executemany; returns the seconds it took."""
    started = time.perf_counter()
    with Session(engine) as session:
        spec = matrices.current(session).parsed()
    rng = random.Random(n)
    with databases.seeding(engine):
        for start in range(1, n + 1, BATCH):
            risks, tags = [], []
            for risk, risk_tags in _rows(spec, start, min(start + BATCH, n + 1), n, rng):
                risks.append(risk)
                tags.extend(risk_tags)
            with engine.begin() as conn:
                conn.execute(table_of(Risk).insert(), risks)
                conn.execute(table_of(RiskTag).insert(), tags)
    return time.perf_counter() - started


# ---- timing ----


def time_list(engine: Engine, filters: RiskFilter, sort: SortKey, repeat: int) -> float:
    """Median milliseconds of one page of 50, after one warm-up run."""
    samples = []
    with Session(engine) as session:
        for i in range(repeat + 1):
            started = time.perf_counter()
            read_page(session, filters, sort=sort, limit=50)
            if i:
                samples.append((time.perf_counter() - started) * 1000)
            session.rollback()
            session.expunge_all()
    return statistics.median(samples)


def measure(url: str, n: int, repeat: int) -> dict[str, float]:
    engine = make_engine(url)
    try:
        prepare_database(engine)
        seconds = seed(engine, n)
        print(f"  seeded {n:,} risks in {seconds:.1f}s", file=sys.stderr, flush=True)
        with Session(engine) as session:
            spec = matrices.current(session).parsed()
        return {name: time_list(engine, f, sort, repeat) for name, f, sort in scenarios(spec)}
    finally:
        engine.dispose()


def report(backend: str, sizes: list[int], figures: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    header = f"{backend:<38}" + "".join(f"{f'{n:,}':>11}" for n in sizes) + f"{'ratio':>8}"
    print(header + "\n" + "-" * len(header))
    rows = []
    for name in figures[sizes[0]]:
        times = [figures[n][name] for n in sizes]
        ratio = times[-1] / times[0] if times[0] else float("inf")
        flag = "" if ratio <= RATIO_TARGET else "  over target"
        print(f"{name:<38}" + "".join(f"{t:>9.2f}ms" for t in times) + f"{ratio:>8.1f}{flag}")
        rows.append({"backend": backend, "scenario": name, "ms": dict(zip(sizes, times, strict=True)), "ratio": ratio})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="register sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per scenario (the median is shown)")
    parser.add_argument(
        "--postgres", metavar="URL", help="on PostgreSQL: a database per size is made through this admin URL"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backend = "postgresql" if args.postgres else "sqlite"
    figures = {}
    for n in sizes:
        print(f"{backend} {n:,}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp, databases.fresh(args.postgres, tmp, f"growth_{n}") as url:
            figures[n] = measure(url, n, args.repeat)
    print(json.dumps(report(backend, sizes, figures)))


if __name__ == "__main__":
    main()
