"""Issue 12's targets and issue 14's page, measured: `.venv/bin/python bench/targets.py [--postgres URL]`.

Runs every benchmark of bench/ (each starts `riskops serve` as it runs, with the bare endpoint in the same
process, and measures its own baseline in the same run) on SQLite and, with --postgres, on PostgreSQL, reads
the JSON line each prints last, and prints one table: each target's figure per database, and whether it is met.
The exports are serialised from a snapshot in memory, so they are measured once. The last line of output is
one JSON object with every figure.
"""

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
Figures = dict[str, Any]  # benchmark name -> the JSON it printed last


@dataclass(frozen=True)
class Target:
    what: str
    at_least: bool  # the figure must be >= bound (else <= bound)
    bound: float
    figure: Callable[[Figures], float]

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def shown(self) -> str:
        unit = "" if self.at_least else "×"
        return f"{'≥' if self.at_least else '≤'} {self.bound:g}{unit}"


def _scenario(figures: Figures, bench: str, key: str, field: str) -> float:
    return float(figures[bench]["scenarios"][key][field])


def _beside(figures: Figures, bench: str, key: str, base: str) -> float:
    return _scenario(figures, bench, key, "rps") / _scenario(figures, bench, base, "rps")


def _vs_bare(key: str) -> Callable[[Figures], float]:
    return lambda figures: _scenario(figures, "register", key, "ratio_to_bare")


def _vs_read(bench: str, key: str) -> Callable[[Figures], float]:
    return lambda figures: _beside(figures, bench, key, "read")


def _bare(figures: Figures, field: str) -> float:
    return (_scenario(figures, "register", "bare_start", field) + _scenario(figures, "register", "bare_end", field)) / 2


def _list_p99(figures: Figures) -> float:
    return _scenario(figures, "register", "list_high", "p99_ms") / _bare(figures, "p99_ms")


def _deliveries(figures: Figures) -> float:
    return float(figures["deliveries"]["ratio_at_16"])


def _growth(figures: Figures) -> float:
    return float(max(row["ratio"] for row in figures["growth"]))


TARGETS = (
    Target("GET /risks/{id} vs bare", True, 0.6, _vs_bare("read")),
    Target("filtered list page of 50 vs bare", True, 0.25, _vs_bare("list_high")),
    Target("list p99 vs bare p99", False, 6, _list_p99),
    Target("POST /risks vs bare", True, 0.15, _vs_bare("create")),
    Target("playbook activation vs risk read", True, 0.25, _vs_read("playbooks", "activate")),
    Target("inbound alert, new, vs risk read", True, 0.6, _vs_read("inbound", "alert_new")),
    Target("inbound alert, deduplicated, vs risk read", True, 0.8, _vs_read("inbound", "alert_dup")),
    Target("worker deliveries vs plain httpx loop, concurrency 16", True, 0.7, _deliveries),
    Target("XLSX of 10,000 risks vs json.dumps", False, 5, lambda f: float(f["exports"]["formats"]["xlsx"]["vs_json"])),
    Target("slowest documented filter or sort, 1M vs 10k risks", False, 3, _growth),
    Target("console register page of 50 vs the JSON list", False, 2, lambda f: float(f["console"]["page_vs_json"])),
)  # fmt: skip


def run(script: str, *options: str) -> Any:
    """Run bench/<script>.py, its progress on our stderr, and give the JSON it printed last."""
    command = [sys.executable, str(BENCH / f"{script}.py"), *options]
    print(f"$ {' '.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    print(done.stdout, file=sys.stderr, flush=True)
    if done.returncode:
        raise SystemExit(f"{script} failed with exit status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(postgres: str | None, args: argparse.Namespace, exports: Any) -> Figures:
    on = ["--postgres", postgres] if postgres else []
    load = ["--risks", str(args.risks), "--connections", "16", "--seconds", str(args.seconds), *on]
    figures: Figures = {
        "register": run("register", *load),
        "playbooks": run("playbooks", *load),
        "inbound": run("inbound", *load),
        "console": run("console", *load),
        "deliveries": run("deliveries", "--risks", "0", *on),
        "exports": exports,
    }
    figures["growth"] = run("growth", "--sizes", args.growth_sizes, *on)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL, through this admin URL")
    parser.add_argument("--risks", type=int, default=100_000, help="the register's size for the load benchmarks")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario")
    parser.add_argument("--growth-sizes", default="10000,100000,1000000", help="register sizes for bench/growth.py")
    args = parser.parse_args()
    exports = run("exports", "--risks", "10000")
    databases = {"SQLite": measure(None, args, exports)}
    if args.postgres:
        databases["PostgreSQL"] = measure(args.postgres, args, exports)
    print(f"\nissue 12 targets: {args.risks:,} risks, 16 connections, {args.seconds:g} s per scenario\n")
    header = f"{'what':<56}" + "".join(f"{name:>12}" for name in databases) + f"{'target':>10}  met"
    print(header + "\n" + "-" * len(header))
    table = []
    for target in TARGETS:
        values = {name: target.figure(figures) for name, figures in databases.items()}
        met = all(target.met(v) for v in values.values())
        print(
            f"{target.what:<56}" + "".join(f"{v:>12.3f}" for v in values.values())
            + f"{target.shown():>10}  {'yes' if met else 'NO'}"
        )  # fmt: skip
        table.append({"what": target.what, "target": target.shown(), "values": values, "met": met})
    print(json.dumps({"benchmark": "riskops-targets", "targets": table, "figures": databases}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
