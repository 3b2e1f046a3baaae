"""The folder that belongs to one run, for everything a run writes besides checkpoints.

``trainer.log_dir`` is not enough: under a ``WandbLogger`` it is the logger's ``save_dir``,
shared by every run, so configs, images and results written there would overwrite those of
earlier runs. A run's own folder is the wandb run's files folder (synced with the run), the
CSV/TensorBoard ``version_N`` folder, or, without a logger, ``default_root_dir``.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import WandbLogger


def run_directory(trainer: Trainer) -> Path:
    """This run's folder; call on global rank 0 only (the wandb run exists there alone)."""
    logger = trainer.logger
    if isinstance(logger, WandbLogger):
        return Path(logger.experiment.dir)
    log_dir = getattr(logger, "log_dir", None) if logger is not None else None
    return Path(log_dir or trainer.default_root_dir)


def shared_run_directory(trainer: Trainer) -> Path:
    """``run_directory`` found on rank 0 and broadcast: a collective, every rank must call it."""
    path = str(run_directory(trainer)) if trainer.is_global_zero else None
    return Path(trainer.strategy.broadcast(path))
