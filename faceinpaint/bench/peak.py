"""The roofline of a bench run: the device's dense-matmul peak, measured in the same run.

Every "achieved" row is a fraction of this peak (its MFU), so a path with room left can be told
from one at the limit. The peak is a square matmul big enough to saturate the device, timed per
precision (CPU: fp32 and bf16; CUDA: fp32 without TF32, TF32 and bf16), the precisions interleaved
round by round, with the threads the rest of the run uses. :func:`bench_peak` runs before and
after the training rows; the achieved rows divide by the median of all its rounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from faceinpaint.bench.rows import Row
from faceinpaint.bench.timing import Spread, interleave

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}


def peak_precisions(device: torch.device) -> tuple[str, ...]:
    """The precisions whose peak is measured on ``device``."""
    return ("fp32", "tf32", "bf16") if device.type == "cuda" else ("fp32", "bf16")


@contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls on or off (CUDA), restored on exit."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def matmul_flops(n: int, times: int) -> int:
    """FLOPs of ``times`` products of two ``n x n`` matrices (a multiply and an add per term)."""
    return 2 * n**3 * times


def bench_peak(
    device: torch.device, n: int, repeats: int, products: int = 4, when: str = "before"
) -> Iterator[Row]:
    """One row per precision: TFLOP/s of ``products`` ``n x n`` matmuls, median / min / max over
    ``repeats`` interleaved rounds after one untimed round. ``when`` labels the row (``before`` or
    ``after`` the training rows); ``extra["rounds"]`` keeps each round's FLOP/s for the MFU."""
    generator = torch.Generator().manual_seed(0)
    fns = {}
    for precision in peak_precisions(device):
        a = torch.randn(n, n, generator=generator).to(device, DTYPES[precision])
        b = torch.randn(n, n, generator=generator).to(device, DTYPES[precision])

        def run(a=a, b=b, tf32=precision == "tf32") -> None:
            with _tf32(tf32):
                for _ in range(products):
                    torch.mm(a, b)

        fns[precision] = run
    times = interleave(fns, device, warmup=1, repeats=repeats)
    flops = matmul_flops(n, products)
    for precision, seconds in times.items():
        rates = [flops / s for s in seconds]
        yield Row.measured(
            "peak",
            device.type,
            f"{precision} matmul {n}, {when}",
            Spread.of(rates).map(lambda r: r / 1e12),
            "TFLOP/s",
            note=f"{products} products of {n} x {n} per round, precisions interleaved; "
            "the roofline of the achieved rows",
            extra={"precision": precision, "rounds": rates},
        )


def measured_peaks(rows: list[Row]) -> dict[str, float]:
    """Median FLOP/s per precision over every round of every peak row in ``rows``."""
    rounds: dict[str, list[float]] = {}
    for row in rows:
        if row.benchmark == "peak" and row.value is not None:
            rounds.setdefault(row.extra["precision"], []).extend(row.extra["rounds"])
    return {precision: Spread.of(values).median for precision, values in rounds.items()}
