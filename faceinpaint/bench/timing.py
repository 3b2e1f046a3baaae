"""Timing that survives a shared machine: device syncs, interleaved variants, spreads, paired ratios.

A machine shared with other jobs slows whatever runs while they run, so two variants timed one
after the other can differ by the load alone. :func:`interleave` runs the variants it compares in
rounds (A, B, C, then B, C, A, ...), each round close in time, and :func:`paired_ratios` divides
the times of the same round: a ratio is only ever taken between runs of one round.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from faceinpaint.device import synchronize


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


@dataclass(frozen=True)
class Spread:
    """Median, min and max of ``n`` values."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("a spread needs at least one value, got none")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def map(self, fn: Callable[[float], float]) -> Spread:
        """The spread of ``fn`` of each value (``fn`` monotonic; a decreasing one swaps the ends)."""
        low, high = sorted((fn(self.low), fn(self.high)))
        return Spread(fn(self.median), low, high, self.n)


@dataclass(frozen=True)
class SelfTimed:
    """A function that times itself and returns its seconds (e.g. one batch inside a fit)."""

    fn: Callable[[], float]


def interleave(
    fns: Mapping[str, Callable[[], object] | SelfTimed],
    device: torch.device,
    warmup: int = 1,
    repeats: int = 3,
) -> dict[str, list[float]]:
    """Seconds of each ``fns[name]()`` over ``repeats`` rounds, after ``warmup`` untimed rounds.

    In every round each function runs once; round ``r`` starts at the ``r``-th function (A B C,
    B C A, C A B, ...) so no variant always runs first. ``times[name][r]`` is the time of round
    ``r``, synchronised on a GPU; a :class:`SelfTimed` function's time is what it returns.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    if not fns:
        raise ValueError("nothing to time: no functions given")
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(-warmup, repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            fn = fns[name]
            own = fn.fn() if isinstance(fn, SelfTimed) else fn()
            synchronize(device)
            if round_ >= 0:
                elapsed = time.perf_counter() - start
                times[name].append(own if isinstance(fn, SelfTimed) else elapsed)
    return times


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> Spread:
    """Spread of ``numerator[r] / denominator[r]`` over the rounds ``r`` of one interleaved run."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(
            f"paired ratios need as many rounds on both sides, got {len(numerator)} and "
            f"{len(denominator)}"
        )
    return Spread.of([a / b for a, b in zip(numerator, denominator, strict=True)])
