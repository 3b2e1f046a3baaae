"""Interleaved timing: round order, warm-up, self-timed functions, spreads and paired ratios."""

from __future__ import annotations

import pytest
import torch

from faceinpaint.bench import timing
from faceinpaint.bench.timing import SelfTimed, Spread, interleave, paired_ratios

CPU = torch.device("cpu")


def test_interleave_rotates_the_order_and_drops_warmup_rounds(monkeypatch):
    calls: list[str] = []
    clock = iter(float(t) for t in range(100))  # every call to perf_counter advances by 1 s
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    fns = {name: (lambda n=name: calls.append(n)) for name in "ABC"}
    times = interleave(fns, CPU, warmup=1, repeats=3)
    # warm-up round -1 starts at C (-1 mod 3 = 2), then A B C, B C A, C A B
    assert calls == list("CAB" + "ABC" + "BCA" + "CAB")
    assert times == {"A": [1.0] * 3, "B": [1.0] * 3, "C": [1.0] * 3}


def test_a_self_timed_function_reports_its_own_seconds():
    times = interleave({"fit": SelfTimed(lambda: 0.25), "wall": lambda: None}, CPU, 0, 2)
    assert times["fit"] == [0.25, 0.25]
    assert all(0 <= t < 0.25 for t in times["wall"])


@pytest.mark.parametrize("repeats, warmup", [(0, 1), (1, -1)])
def test_interleave_refuses_no_repeats_or_negative_warmup(repeats, warmup):
    with pytest.raises(ValueError, match="repeats >= 1 and warmup >= 0"):
        interleave({"a": lambda: None}, CPU, warmup=warmup, repeats=repeats)


def test_paired_ratios_divide_round_by_round():
    # a load spike in round 2 slows both variants of that round: the paired ratio does not move
    assert paired_ratios([1.0, 3.0, 1.2], [2.0, 6.0, 2.4]) == Spread(0.5, 0.5, 0.5, 3)
    assert paired_ratios([1.0, 3.0], [2.0, 2.0]) == Spread(1.0, 0.5, 1.5, 2)


def test_paired_ratios_need_the_same_rounds():
    with pytest.raises(ValueError, match="as many rounds on both sides, got 2 and 1"):
        paired_ratios([1.0, 2.0], [1.0])


def test_spread_map_of_a_decreasing_function_swaps_the_ends():
    seconds = Spread.of([2.0, 4.0, 1.0])
    assert seconds == Spread(2.0, 1.0, 4.0, 3)
    assert seconds.map(lambda s: 8 / s) == Spread(4.0, 2.0, 8.0, 3)
