"""What a training run tells Weights & Biases, and what its checkpoints remember of it.

* ``wandb_offline_unless_logged_in``: runs sync only for users who logged in (or chose a mode).
* ``log_config``: the resolved config (trainer, data, model, seed) into the run's ``wandb.config``.
* ``run_info``: project, id, name and group of the run, stored in each checkpoint so that
  ``faceinpaint eval`` can group its own run with the training run.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import WandbLogger

CHECKPOINT_KEY = "wandb_run"


def wandb_offline_unless_logged_in() -> None:
    """Default ``WANDB_MODE=offline`` unless the user set a mode, an API key, or logged in."""
    if "WANDB_MODE" in os.environ or "WANDB_API_KEY" in os.environ:
        return
    try:
        logged_in = netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        logged_in = False
    if not logged_in:
        os.environ["WANDB_MODE"] = "offline"


def wandb_logger(trainer: Trainer) -> WandbLogger | None:
    """The trainer's ``WandbLogger``, if one of its loggers is."""
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


def log_config(trainer: Trainer, config: Mapping[str, Any]) -> None:
    """Put the run's resolved config (every section: trainer, data, model, ...) into
    ``wandb.config``; nothing without a wandb logger. Call on global rank 0."""
    logger = wandb_logger(trainer)
    if logger is not None:
        logger.experiment.config.update(dict(config), allow_val_change=True)


def run_info(trainer: Trainer) -> dict[str, str | None] | None:
    """``{"project", "id", "name", "group"}`` of the trainer's wandb run, or None."""
    logger = wandb_logger(trainer)
    if logger is None:
        return None
    run = logger.experiment
    return {
        "project": run.project,
        "id": run.id,
        "name": run.name,
        "group": run.group or None,
    }
