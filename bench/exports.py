"""Benchmark of quarterly review exports: `.venv/bin/python bench/exports.py`.

Closes a cycle over N risks, then times each export format and measures its peak Python memory (tracemalloc, in a
second run), beside serialising the same snapshot with the standard library's json.dumps in the same run.
"""

import argparse
import json
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from riskops import clock
from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.bootstrap import prepare_database
from riskops.config import Settings
from riskops.db import Database, make_engine
from riskops.reviews import cycles, files
from riskops.risks import service as risks
from riskops.risks.models import RiskCreate

ADMIN = Principal(key_id=0, name="bench", role=Role.admin)


def measure(work: Callable[[], object]) -> tuple[float, float, float, int]:
    """Seconds of a plain run, then the seconds and peak of a second run under tracemalloc, timed apart because it
    slows code that allocates in Python (the XLSX writer) several fold and C code (json.dumps) much less."""
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    started = time.perf_counter()
    work()
    traced = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = len(result) if isinstance(result, bytes | str) else 0
    return seconds, traced, peak / 2**20, size


def exported(source: files.ExportSource, file_format: files.Format) -> Callable[[], bytes]:
    """The export as `riskops export` writes it: whole, CSV included."""

    def work() -> bytes:
        body = files.export(source, file_format)
        return body if isinstance(body, bytes) else b"".join(body)

    return work


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--risks", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(1)
    clock.set_fixed(datetime(2026, 7, 2, tzinfo=UTC))
    with tempfile.TemporaryDirectory(prefix="riskops-bench-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/exports.db")
        prepare_database(engine)
        database = Database(engine)
        settings = Settings()
        started = time.perf_counter()
        with database.write() as session:
            for i in range(args.risks):
                data = {
                    "title": f"Risk {i}: {rng.choice(['outage', 'fraud', '=SUM(A1)', 'breach'])}", "category": "ops",
                    "owner": f"owner{i % 40}", "tags": ["bench"],
                    "inherent": {"likelihood": rng.randint(1, 5), "impact": rng.randint(1, 5)},
                }  # fmt: skip
                risks.create_risk(session, RiskCreate.model_validate(data), ADMIN, settings=settings)
            cycles.open_cycle(session, "2026Q3", ADMIN, settings=settings)
        seed_s = time.perf_counter() - started
        clock.set_fixed(datetime(2026, 10, 1, tzinfo=UTC) + timedelta(hours=1))
        with database.write() as session:
            started = time.perf_counter()
            cycles.close_cycle(session, cycles.get_cycle(session, "2026Q3"), ADMIN)
            close_s = time.perf_counter() - started
            source = files.export_source(session, "2026Q3")
        rows = {"stdlib json.dumps": measure(lambda: json.dumps(source.content).encode())}
        rows.update((name, measure(exported(source, name))) for name in files.FORMATS)
        engine.dispose()
    clock.set_fixed(None)
    base, traced_base = rows["stdlib json.dumps"][:2]
    print(
        f"\n{args.risks} risks seeded in {seed_s:.0f} s; "
        f"closing the cycle (snapshot rebuilt from history) took {close_s:.2f} s\n"
    )
    columns = (("seconds", 9), ("vs json.dumps", 15), ("traced s", 10), ("vs json", 9), ("peak MiB", 10))
    print(f"{'export':<20}" + "".join(f"{title:>{width}}" for title, width in columns) + f"{'size KiB':>10}")
    for name, (seconds, traced, peak, size) in rows.items():
        print(
            f"{name:<20}{seconds:>9.3f}{seconds / base:>15.1f}{traced:>10.3f}{traced / traced_base:>9.1f}"
            f"{peak:>10.1f}{size / 1024:>10.0f}"
        )
    formats = {
        name: {"seconds": round(seconds, 4), "vs_json": round(seconds / base, 2), "peak_mib": round(peak, 1)}
        for name, (seconds, _, peak, _) in rows.items()
    }
    print(json.dumps({"benchmark": "riskops-exports", "risks": args.risks, "formats": formats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
