"""Benchmark of quantified loss's aggregate: `.venv/bin/python bench/quant.py`.

Simulates the yearly loss of N risks (a mix of PERT and 90 %-interval estimates, a third with a secondary loss)
over T trials, with the drivers of the years above the P95 and above a tolerance's loss, and compares the
time with what numpy takes just to draw the same number of random values of the same distributions (beta for the
PERT rows, normal for the interval rows) and nothing else, on one thread. Peak memory: tracemalloc (numpy reports
its arrays to it) in a second run, and the process's maximum resident size.
"""

import argparse
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from numpy.random import PCG64, Generator

from riskops.quant import simulation
from riskops.quant.simulation import Estimate, Interval, Pert, Shape


def estimates(count: int) -> list[Estimate]:
    rng = random.Random(1)
    out = []
    for _ in range(count):
        frequency: Shape = (
            Pert(0.01, rng.uniform(0.05, 2), rng.uniform(2, 12))
            if rng.random() < 0.7
            else Interval(0.01, rng.uniform(0.1, 5))
        )
        low = rng.uniform(1e3, 1e5)
        primary: Shape = Pert(low, low * 3, low * 40) if rng.random() < 0.7 else Interval(low, low * 50)
        secondary = (Pert(0, low, low * 10),) if rng.random() < 1 / 3 else ()
        out.append(Estimate(frequency, (primary, *secondary)))
    return out


def draws_alone(risks: list[Estimate], trials: int) -> None:
    """The same count of beta and normal values, a chunk at a time, drawn and dropped."""
    shapes = [s for e in risks for s in (e.frequency, *e.magnitude)]
    rng = Generator(PCG64(1))
    size = simulation.CHUNK_BYTES // (8 * trials)  # the same matrix size as a block of the aggregate
    for start in range(0, len(shapes), size):
        part = shapes[start : start + size]
        pert = [s for s in part if isinstance(s, Pert)]
        a = np.array([1 + 4 * (s.mode - s.low) / max(s.high - s.low, 1e-12) for s in pert])
        b = np.array([1 + 4 * (s.high - s.mode) / max(s.high - s.low, 1e-12) for s in pert])
        rng.beta(a[:, None], b[:, None], size=(len(pert), trials))
        rng.standard_normal(size=(len(part) - len(pert), trials))


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--risks", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    risks = estimates(args.risks)
    pert = sum(isinstance(s, Pert) for e in risks for s in (e.frequency, *e.magnitude))
    values = sum(1 + len(e.magnitude) for e in risks) * args.trials
    share = pert / (values / args.trials)
    print(f"{args.risks} risks x {args.trials} trials: {values / 1e6:.0f} M draws ({share:.0%} of them beta)")

    baseline = timed(lambda: draws_alone(risks, args.trials))
    print(f"numpy drawing them alone, one thread: {baseline:.2f} s")
    for workers in (1, simulation.WORKERS):
        simulation.WORKERS = workers
        seconds = timed(lambda: simulation.aggregate(risks, args.trials, seed=1, levels=[1e9]))
        print(
            f"aggregate with drivers (one pass), {workers} thread(s): {seconds:.2f} s, ratio {seconds / baseline:.2f}"
        )
    tracemalloc.start()
    simulation.aggregate(risks, args.trials, seed=1, levels=[1e9])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"peak traced memory {peak / 2**20:.0f} MiB; block {simulation.block_size(args.risks)} trials")
    print(f"max resident size of the process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
