"""fp32 against bf16 autocast (``SearchSettings(precision=...)``) for the paper-width latent search,
one face x 64 candidates, one thread, timed interleaved (``faceinpaint.bench.timing.interleave``): ms per iteration from a 3-iteration
search minus the fastest 0-iteration one of the same precision, 3 rounds after one untimed.
Random weights (speed does not depend on them). docs/RESULTS.md, "bf16 in the latent search".

    python scripts/search_bf16_ab.py
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from faceinpaint.bench.sizes import synthetic_batch
from faceinpaint.bench.timing import interleave, paired_ratios
from faceinpaint.device import keep_freed_memory
from faceinpaint.latent_search import LatentSearch, SearchSettings
from faceinpaint.models.dcgan import Discriminator, Generator

ITERATIONS = 3
ROUNDS = 3
PRECISIONS = ("fp32", "bf16")


def main() -> None:
    torch.set_num_threads(1)
    keep_freed_memory(True)  # as the faceinpaint command does
    torch.manual_seed(0)
    generator, discriminator = Generator(100, 64, 64), Discriminator(64, 64)
    batch = synthetic_batch(1, 64, torch.device("cpu"))

    def search(iterations: int, precision: str) -> Callable[[], object]:
        settings = SearchSettings(candidates=64, iterations=iterations, precision=precision)
        run = LatentSearch(generator, discriminator, settings=settings)
        return lambda: run(batch["image"], batch["mask"], batch["index"])

    fns = {f"{p}, K={k}": search(k, p) for p in PRECISIONS for k in (0, ITERATIONS)}
    times = interleave(fns, torch.device("cpu"), warmup=1, repeats=ROUNDS)
    per_iteration = {
        p: [(t - min(times[f"{p}, K=0"])) / ITERATIONS for t in times[f"{p}, K={ITERATIONS}"]]
        for p in PRECISIONS
    }
    for precision, values in per_iteration.items():
        print(f"{precision} ms/iteration: {[round(v * 1e3) for v in values]}")
    ratio = paired_ratios(per_iteration["fp32"], per_iteration["bf16"])
    print(f"bf16 speed-up: {ratio.median:.2f} [{ratio.low:.2f}-{ratio.high:.2f}] by round")


if __name__ == "__main__":
    main()
