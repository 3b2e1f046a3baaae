"""DCGAN training images/s at 64 px."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import Sizes, synthetic_batch
from faceinpaint.bench.timing import Spread, paired_ratios
from faceinpaint.bench.training import interleaved_fits, training_variants


def build_dcgan(sizes: Sizes, compiled: bool = False) -> nn.Module:
    """The DCGAN module without sample-grid logging (not training)."""
    from faceinpaint.lit.dcgan import DCGANModule

    module = DCGANModule(**sizes.dcgan, sample_every_n_batches=0)
    module.log_samples = lambda: None
    if compiled:
        module.generator = torch.compile(module.generator)
        module.discriminator = torch.compile(module.discriminator)
    return module


def bench_dcgan(
    device: torch.device, sizes: Sizes, repeats: int, compile_cpu: bool
) -> Iterator[Row]:
    """images/s per variant, and each variant's speed-up over fp32 eager (paired by round)."""
    variants = training_variants(device, compile_cpu)
    batch_size = sizes.dcgan_batch
    batch = synthetic_batch(batch_size, sizes.dcgan["image_size"], device)
    modules = {v.name: (build_dcgan(sizes, v.compiled), v.precision) for v in variants}
    times = interleaved_fits(modules, batch, device, repeats, sizes.fit_warmup)
    for v in variants:
        per_batch = Spread.of(times[v.name])
        yield Row.measured(
            "dcgan train",
            device.type,
            v.name,
            per_batch.map(lambda s: batch_size / s),
            "images/s",
            note=f"batch {batch_size}, {sizes.dcgan['image_size']} px",
            extra={"batch": batch_size, "seconds_per_batch": per_batch.median},
        )
    for v in variants[1:]:
        yield Row.measured(
            "dcgan train speed-up",
            device.type,
            f"{v.name} / {variants[0].name}",
            paired_ratios(times[variants[0].name], times[v.name]),
            "x",
            note=f"batch {batch_size}; >1 = faster; paired by round",
        )
