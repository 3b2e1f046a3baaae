"""VAE-GAN training images/s per curriculum stage and batch size; the curriculum's time from them."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import PAPER_STAGE_BOUNDARIES, Sizes, synthetic_batch
from faceinpaint.bench.timing import Spread, paired_ratios
from faceinpaint.bench.training import interleaved_fits, training_variants

PAPER_BATCH = 16


def build_vaegan(sizes: Sizes, stage: int, compiled: bool) -> nn.Module:
    """The VAE-GAN module held in curriculum ``stage`` (1, 2 or 3), random VGG / landmark weights."""
    from faceinpaint.lit.vaegan import VAEGANModule

    far = 10**9
    boundaries = {1: (far, far, far), 2: (0, far, far), 3: (0, 0, far)}[stage]
    module = VAEGANModule(
        **sizes.vaegan,
        vgg_weights="random",
        landmark_checkpoint="random",
        stage_boundaries=boundaries,
        image_log_every_n_steps=0,
    )
    if compiled:
        for name in ("generator", "global_critic", "local_critic"):
            setattr(module, name, torch.compile(getattr(module, name)))
    return module


def bench_vaegan(
    device: torch.device, sizes: Sizes, repeats: int, compile_cpu: bool
) -> Iterator[Row]:
    """Rows per stage x batch x variant (training images/s), each variant's speed-up over fp32 eager
    (paired by round), then the whole paper curriculum's minutes extrapolated per variant."""
    variants = training_variants(device, compile_cpu)
    rounds = sizes.vaegan_rounds or repeats
    size = sizes.vaegan["image_size"]
    seconds: dict[
        tuple[str, int], Spread
    ] = {}  # (variant, stage) -> s/batch at the first batch size
    for stage in (1, 2, 3):
        for batch_size in sizes.vaegan_batches:
            batch = synthetic_batch(batch_size, size, device)
            modules = {
                v.name: (build_vaegan(sizes, stage, v.compiled), v.precision) for v in variants
            }
            # stage 1: one batch per generator update; stages 2-3 (WGAN Algorithm 1): a critic
            # update every batch and a generator update every n_critic-th, so a generator
            # update costs n_critic consecutive batches, timed together
            n_critic = next(iter(modules.values()))[0].critic.n_critic
            cycle = 1 if stage == 1 else n_critic
            times = interleaved_fits(modules, batch, device, rounds, sizes.fit_warmup, cycle)
            for v in variants:
                per_update = Spread.of(times[v.name])
                if batch_size == sizes.vaegan_batches[0]:
                    seconds[(v.name, stage)] = per_update
                yield Row.measured(
                    "vaegan train",
                    device.type,
                    v.name,
                    per_update.map(lambda s, b=batch_size * cycle: b / s),
                    "images/s",
                    note=f"stage {stage}, batch {batch_size}, {size} px; "
                    f"{1 / per_update.median:.3g} generator updates/s ({cycle} batches each)",
                    extra={
                        "stage": stage,
                        "batch": batch_size,
                        "batches_per_update": cycle,
                        "seconds_per_update": per_update.median,
                    },
                )
            for v in variants[1:]:
                yield Row.measured(
                    "vaegan train speed-up",
                    device.type,
                    f"{v.name} / {variants[0].name}",
                    paired_ratios(times[variants[0].name], times[v.name]),
                    "x",
                    note=f"stage {stage}, batch {batch_size}; >1 = faster; paired by round",
                )
    if device.type == "cpu" and not compile_cpu:
        yield Row(
            "vaegan train",
            "cpu",
            "compile",
            None,
            "images/s",
            note="torch.compile skipped on CPU (minutes to compile; --compile_cpu)",
        )
    batch_size = sizes.vaegan_batches[0]
    starts = (0, *PAPER_STAGE_BOUNDARIES[:2])
    updates = [end - start for start, end in zip(starts, PAPER_STAGE_BOUNDARIES, strict=True)]
    for v in variants:
        per_stage = [seconds[(v.name, stage)] for stage in (1, 2, 3)]
        scale = PAPER_BATCH / batch_size  # seconds per batch assumed linear in the batch size
        low, median, high = (
            sum(n * getattr(s, end) * scale for n, s in zip(updates, per_stage, strict=True)) / 60
            for end in ("low", "median", "high")
        )
        yield Row(
            "vaegan curriculum (extrapolated)",
            device.type,
            v.name,
            median,
            "minutes",
            low,
            high,
            min(s.n for s in per_stage),
            note=f"{sum(updates)} updates at batch {PAPER_BATCH} "
            f"({'/'.join(map(str, updates))} per stage) from the stage rows at batch {batch_size}"
            + ("" if batch_size == PAPER_BATCH else f", scaled x{scale:g}")
            + "; target <= 20 min on one H100/H200",
        )
