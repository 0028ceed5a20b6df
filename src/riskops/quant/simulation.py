"""The Monte Carlo engine, numpy only: a simulated year's loss of a risk is one loss event frequency draw times one
loss magnitude draw (primary plus secondary when given apart), as Open FAIR and pyfair compute it. Estimates in a
{min, most likely, max} form are beta-PERT (gamma 4), a calibrated 90 % interval {low, high} is a lognormal.

Reproducible: the same estimates, trials and seed give the same figures. An aggregate is the sum of its risks'
simulated years (the risks taken as independent), drawn a block of trials at a time (every risk's years of the
block, each block from its own stream) so memory stays bounded."""

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.random import PCG64, Generator
from numpy.typing import NDArray

Array = NDArray[np.float64]

GAMMA = 4.0  # beta-PERT's weight of the most likely value (Vose; pyfair's default)
Z90 = 1.6448536269514722  # the standard normal's 95th percentile: a 90 % interval spans ±Z90 sigma
PERCENTILES = (50, 90, 95, 99)
CURVE_POINTS = 50
# One block's (risks × trials) matrix of float64 stays within this; its draws hold a few such matrices at once.
CHUNK_BYTES = 8 * 1024 * 1024
TOP_DRIVERS = 10
MAX_SEED = 2**63 - 1
# numpy's generators release the GIL while they fill an array: chunks, each with its own stream, draw side by side.
WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Pert:
    low: float
    mode: float
    high: float


@dataclass(frozen=True)
class Interval:
    """A calibrated 90 % interval: 5 % of draws below low, 5 % above high."""

    low: float
    high: float

    @property
    def mu(self) -> float:
        return (math.log(self.low) + math.log(self.high)) / 2

    @property
    def sigma(self) -> float:
        return (math.log(self.high) - math.log(self.low)) / (2 * Z90)


Shape = Pert | Interval


@dataclass(frozen=True)
class Estimate:
    """A risk's inputs: its yearly frequency, and its magnitude per event as one shape or (primary, secondary).
    The factors scale the draws: a treatment's percentage reductions, applied to the same draws."""

    frequency: Shape
    magnitude: tuple[Shape, ...]
    frequency_factor: float = 1.0
    magnitude_factor: float = 1.0


@dataclass(frozen=True)
class Figures:
    mean: float
    percentiles: dict[int, float]
    curve: list[tuple[float, float]] = field(default_factory=list)  # (loss, probability a year loses more)


@dataclass(frozen=True)
class Driver:
    index: int  # of the estimate in the sequence given
    tail_mean: float  # its mean loss over the years the aggregate exceeds the level
    share: float  # of the aggregate's mean loss over those years


@dataclass(frozen=True)
class Aggregate:
    figures: Figures
    means: list[float]  # each risk's mean annual loss
    drivers: dict[float, list[Driver]]  # per level asked about: the risks that drive the years above it


def new_seed() -> int:
    return int(np.random.SeedSequence().entropy % MAX_SEED)  # type: ignore[operator]


@dataclass(frozen=True)
class _Rows:
    """The parameters of a set of shapes as arrays, worked out once however many blocks draw from them."""

    count: int
    pert: NDArray[np.intp]
    low: Array
    width: Array
    a: Array
    b: Array
    logn: NDArray[np.intp]
    mu: Array
    sigma: Array

    @classmethod
    def of(cls, shapes: Sequence[Shape]) -> "_Rows":
        perts = [s for s in shapes if isinstance(s, Pert)]
        intervals = [s for s in shapes if isinstance(s, Interval)]
        low, high = np.array([s.low for s in perts]), np.array([s.high for s in perts])
        mode = np.array([s.mode for s in perts])
        width = high - low
        span = np.where(width > 0, width, 1.0)  # a constant (min = max) still draws, to keep the stream aligned
        return cls(
            count=len(shapes), pert=np.array([i for i, s in enumerate(shapes) if isinstance(s, Pert)], dtype=np.intp),
            low=low, width=width, a=1 + GAMMA * (mode - low) / span, b=1 + GAMMA * (high - mode) / span,
            logn=np.array([i for i, s in enumerate(shapes) if isinstance(s, Interval)], dtype=np.intp),
            mu=np.array([s.mu for s in intervals]), sigma=np.array([s.sigma for s in intervals]),
        )  # fmt: skip

    def draw(self, trials: int, rng: Generator) -> Array:
        """One row of `trials` draws per shape: the PERT rows in one beta call, then the lognormal rows."""
        out = np.empty((self.count, trials))
        if self.pert.size:
            drawn = rng.beta(self.a[:, None], self.b[:, None], size=(self.pert.size, trials))
            out[self.pert] = self.low[:, None] + self.width[:, None] * drawn
        if self.logn.size:
            drawn = rng.standard_normal(size=(self.logn.size, trials))
            out[self.logn] = np.exp(self.mu[:, None] + self.sigma[:, None] * drawn)
        return out


@dataclass(frozen=True)
class Prepared:
    """Estimates as the engine draws them."""

    frequency: _Rows
    magnitude: _Rows
    secondary: _Rows
    second: NDArray[np.intp]  # the risks with a secondary loss
    frequency_factor: Array
    magnitude_factor: Array


def prepare(estimates: Sequence[Estimate]) -> Prepared:
    second = [i for i, e in enumerate(estimates) if len(e.magnitude) > 1]
    return Prepared(
        frequency=_Rows.of([e.frequency for e in estimates]), magnitude=_Rows.of([e.magnitude[0] for e in estimates]),
        secondary=_Rows.of([estimates[i].magnitude[1] for i in second]), second=np.array(second, dtype=np.intp),
        frequency_factor=np.array([e.frequency_factor for e in estimates]),
        magnitude_factor=np.array([e.magnitude_factor for e in estimates]),
    )  # fmt: skip


def annual_losses(estimates: Sequence[Estimate] | Prepared, trials: int, rng: Generator) -> Array:
    """A (risks × trials) matrix of simulated years' losses, in a fixed order of draws: frequencies, primary (or
    whole) magnitudes, then the secondary magnitudes of the risks that give one."""
    ready = estimates if isinstance(estimates, Prepared) else prepare(estimates)
    frequency = ready.frequency.draw(trials, rng)
    frequency *= ready.frequency_factor[:, None]
    magnitude = ready.magnitude.draw(trials, rng)
    if ready.second.size:
        magnitude[ready.second] += ready.secondary.draw(trials, rng)
    magnitude *= ready.magnitude_factor[:, None]
    frequency *= magnitude
    return frequency


def block_size(risks: int) -> int:
    """Trials per block: a block's (risks × trials) matrix of float64 stays within CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (8 * max(risks, 1)))


@dataclass
class _Worst:
    """The worst years seen so far, each with its risks' losses: the years above the P95 are among them."""

    keep: int
    totals: Array
    trials: NDArray[np.int64]
    losses: Array  # (risks × kept years)

    def merge(self, totals: Array, trials: NDArray[np.int64], losses: Array) -> None:
        """Add a block's years (`losses` its risks' losses in those years), of later trials than those kept."""
        if self.totals.size == self.keep:  # full: only a year worse than the least kept can get in
            better = totals > self.totals[-1]
            totals, trials, losses = totals[better], trials[better], losses[:, better]
        totals = np.concatenate([self.totals, totals])
        trials = np.concatenate([self.trials, trials])
        order = np.lexsort((trials, -totals))[: self.keep]  # the largest first; a tie to the earlier trial
        self.totals, self.trials = totals[order], trials[order]
        self.losses = np.concatenate([self.losses, losses], axis=1)[:, order]


def figures(losses: Array, points: int = CURVE_POINTS) -> Figures:
    """Mean, percentiles and the exceedance curve of a sample of yearly losses."""
    ordered = np.sort(losses)
    values = np.percentile(ordered, PERCENTILES)
    return Figures(
        mean=float(ordered.mean()),
        percentiles={p: float(v) for p, v in zip(PERCENTILES, values, strict=True)},
        curve=exceedance(ordered, points),
    )


def exceedance(ordered: Array, points: int) -> list[tuple[float, float]]:
    """P(loss > x) at `points` losses spaced evenly on a log scale from the least loss above 0 to the largest."""
    positive = ordered[ordered > 0]
    if positive.size == 0:
        return []
    losses = np.geomspace(positive[0], ordered[-1], points) if positive[0] < ordered[-1] else positive[:1]
    above = 1 - np.searchsorted(ordered, losses, side="right") / ordered.size
    return [(float(x), float(p)) for x, p in zip(losses, above, strict=True)]


def simulate(estimate: Estimate, trials: int, seed: int) -> Figures:
    """One risk's figures: the same estimate, trials and seed, the same figures."""
    stream = np.random.SeedSequence(seed).spawn(1)[0]
    return figures(annual_losses([estimate], trials, Generator(PCG64(stream)))[0])


def exceeding(losses: Array, level: float) -> float:
    """The share of simulated years that lose more than `level`."""
    return float(np.count_nonzero(losses > level) / losses.size)


def aggregate(
    estimates: Sequence[Estimate], trials: int, seed: int, levels: Sequence[float] = (), top: int = TOP_DRIVERS
) -> tuple[Aggregate, Array]:
    """The register's (or a filter's) yearly loss: the sum of its risks' simulated years, and the risks that drive
    the years above each level (the aggregate's P95 always one). Returns the totals too.

    One pass, a block of trials at a time (every risk's years for those trials), each block from its own stream
    spawned from the seed, so that the figures do not depend on which thread drew which block. The levels asked
    about are known before: each risk's losses are summed over the years above them as the blocks go. The P95 is
    known only at the end: the worst 5 % of years (and one more) are kept with their risks' losses, and the years
    above the P95 are among them. Memory: a block per worker, and those worst years."""
    count, wanted = len(estimates), sorted(set(levels))
    size = block_size(count)
    starts = range(0, trials, size)
    streams = np.random.SeedSequence(seed).spawn(len(starts))
    keep = math.ceil(trials * (100 - 95) / 100) + 1

    ready = prepare(estimates)

    def work(index: int) -> tuple[Array, Array, Array, Array]:
        start = starts[index]
        losses = annual_losses(ready, min(size, trials - start), Generator(PCG64(streams[index])))
        totals = losses.sum(axis=0)
        above = np.stack([losses[:, totals > level].sum(axis=1) for level in wanted]) if wanted else np.empty((0, 0))
        return totals, losses.sum(axis=1), above, losses

    total = np.empty(trials)
    sums, over = np.zeros(count), np.zeros((len(wanted), count))
    kept = _Worst(keep, np.empty(0), np.empty(0, dtype=np.int64), np.empty((count, 0)))
    with ThreadPoolExecutor(WORKERS) as pool:
        for first in range(0, len(starts), WORKERS):  # a batch at a time: no more than a block per worker held
            batch = range(first, min(first + WORKERS, len(starts)))
            for index, (totals, risk_sums, above, losses) in zip(batch, pool.map(work, batch), strict=True):
                total[starts[index] : starts[index] + totals.size] = totals
                sums += risk_sums
                if wanted:
                    over += above
                kept.merge(totals, np.arange(starts[index], starts[index] + totals.size), losses)
    result = figures(total)
    p95 = result.percentiles[95]
    tail = kept.totals > p95
    drivers = {p95: _top(kept.losses[:, tail].mean(axis=1) if tail.any() else np.zeros(count), top)}
    for position, level in enumerate(wanted):
        years = np.count_nonzero(total > level)
        drivers[level] = _top(over[position] / years if years else np.zeros(count), top)
    return Aggregate(figures=result, means=[float(m) for m in sums / trials], drivers=drivers), total


def _top(tail: Array, top: int) -> list[Driver]:
    whole = float(tail.sum())
    if whole <= 0:
        return []
    order = np.argsort(-tail, kind="stable")[:top]
    return [Driver(int(i), float(tail[i]), float(tail[i] / whole)) for i in order if tail[i] > 0]
