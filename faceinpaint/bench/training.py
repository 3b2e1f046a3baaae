"""Training throughput under a Lightning Trainer: one short fit per variant and round, interleaved."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from faceinpaint.bench.timing import SelfTimed, interleave
from faceinpaint.device import cpu_has_bf16, synchronize


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's per-fit banners (accelerator, tips) and warnings (modules in eval mode, no
    validation loop) kept out of the table printed as it goes; restored on exit."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"lightning\..*")
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@dataclass(frozen=True)
class Variant:
    """A way of training the same model: Lightning precision and whether it is ``torch.compile``d."""

    name: str
    precision: str
    compiled: bool


def training_variants(device: torch.device, compile_cpu: bool) -> list[Variant]:
    """fp32 eager everywhere; bf16 eager and bf16 compiled on a GPU; bf16 eager on a CPU with
    native bf16 (oneDNN: AVX512-BF16 or AMX), and fp32 compiled on CPU if asked."""
    variants = [Variant("fp32 eager", "32-true", False)]
    if device.type == "cuda":
        variants += [
            Variant("bf16 eager", "bf16-mixed", False),
            Variant("bf16 compile", "bf16-mixed", True),
        ]
        return variants
    if cpu_has_bf16():
        variants.append(Variant("bf16 eager", "bf16-mixed", False))
    if compile_cpu:
        variants.append(Variant("fp32 compile", "32-true", True))
    return variants


class _SameBatch(torch.utils.data.Dataset):
    """``length`` copies of one CPU batch (DataLoader with ``batch_size=None``)."""

    def __init__(self, batch: dict[str, Tensor], length: int) -> None:
        self.batch = {k: v.cpu() for k, v in batch.items()}
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.batch


class _BatchTimer(pl.Callback):
    """Seconds of each training batch, synchronised on a GPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        synchronize(self.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(self.device)
        self.times.append(time.perf_counter() - self._start)


def fit_once(
    module: nn.Module,
    batch: dict[str, Tensor],
    device: torch.device,
    precision: str,
    warmup: int = 1,
    timed: int = 1,
) -> float:
    """Seconds of the last ``timed`` of ``warmup + timed`` training batches of ``module`` in a
    fresh Trainer (the first ones warm up: optimizer state, allocator, compilation)."""
    timer = _BatchTimer(device)
    loader = torch.utils.data.DataLoader(_SameBatch(batch, warmup + timed), batch_size=None)
    with quiet_lightning():
        trainer = pl.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            precision=precision,
            max_epochs=1,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[timer],
        )
        trainer.fit(module, train_dataloaders=loader)
    return sum(timer.times[-timed:])


def interleaved_fits(
    modules: Mapping[str, tuple[nn.Module, str]],
    batch: dict[str, Tensor],
    device: torch.device,
    rounds: int,
    warmup: int = 1,
    timed: int = 1,
) -> dict[str, list[float]]:
    """Seconds of ``timed`` training batches of each ``name -> (module, precision)``, one fit per
    variant per round, the variants interleaved (see :func:`~faceinpaint.bench.timing.interleave`);
    each fit times its last ``timed`` batches after ``warmup`` untimed ones."""
    fns = {
        name: SelfTimed(lambda m=module, p=precision: fit_once(m, batch, device, p, warmup, timed))
        for name, (module, precision) in modules.items()
    }
    return interleave(fns, device, warmup=0, repeats=rounds)
