"""fp32 against bf16 autocast (``SearchSettings(precision=...)``) for the paper-width latent search,
one face x 64 candidates, one thread, timed interleaved: ms per iteration from a 3-iteration
search minus the fastest 0-iteration one of the same precision, 3 rounds after one untimed.
Random weights (speed does not depend on them). docs/RESULTS.md, "bf16 in the latent search".

    python scripts/search_bf16_ab.py
"""

from __future__ import annotations

import time

import torch

from faceinpaint.bench.sizes import synthetic_batch
from faceinpaint.device import keep_freed_memory
from faceinpaint.latent_search import LatentSearch, SearchSettings
from faceinpaint.models.dcgan import Discriminator, Generator

ITERATIONS = 3
ROUNDS = 3


def main() -> None:
    torch.set_num_threads(1)
    keep_freed_memory(True)  # as the faceinpaint command does
    torch.manual_seed(0)
    generator, discriminator = Generator(100, 64, 64), Discriminator(64, 64)
    batch = synthetic_batch(1, 64, torch.device("cpu"))
    runs = [(k, precision) for precision in ("fp32", "bf16") for k in (0, ITERATIONS)]

    def run(iterations: int, precision: str) -> None:
        settings = SearchSettings(candidates=64, iterations=iterations, precision=precision)
        LatentSearch(generator, discriminator, settings=settings)(
            batch["image"], batch["mask"], batch["index"]
        )

    for key in runs:
        run(*key)
    times: dict[tuple[int, str], list[float]] = {key: [] for key in runs}
    for _ in range(ROUNDS):
        for key in runs:
            start = time.perf_counter()
            run(*key)
            times[key].append(time.perf_counter() - start)
    per_iteration = {
        precision: [
            (t - min(times[(0, precision)])) / ITERATIONS for t in times[(ITERATIONS, precision)]
        ]
        for precision in ("fp32", "bf16")
    }
    ratios = [a / b for a, b in zip(per_iteration["fp32"], per_iteration["bf16"], strict=True)]
    for precision, values in per_iteration.items():
        print(f"{precision} ms/iteration: {[round(v * 1e3) for v in values]}")
    print(f"bf16 speed-up by round: {[round(r, 2) for r in ratios]}")


if __name__ == "__main__":
    main()
