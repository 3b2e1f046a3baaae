"""What a training run tells Weights & Biases, and what its checkpoints remember of it.

* ``wandb_offline_unless_logged_in``: runs sync only for users who logged in (or chose a mode).
* ``log_config``: the resolved config (trainer, data, model, seed) into the run's ``wandb.config``.
* ``define_best_summaries``: validation metrics keep their best value in the run's summary.
* ``run_info``: entity, project, id, name and group of the run and its model artifact, stored in
  each checkpoint so that ``faceinpaint eval`` can group its own run with the training run and
  use the checkpoint's artifact.
* ``link_wandb_loggers``: a training run's group (its name) and job type (``train``); ``fit``
  resumed from a checkpoint of a wandb run continues that run (its id, ``resume="allow"``), so
  a requeued job stays one run on the dashboard.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import WandbLogger

from faceinpaint.lit.loading import read_checkpoint

CHECKPOINT_KEY = "wandb_run"
# Validation metrics whose summary is the best value (glob -> "max" / "min"), not the last.
BEST_SUMMARIES = {"val/psnr*": "max", "val/ssim*": "max", "val/nme*": "min", "val/total": "min"}
# wandb's job type of each LightningCLI subcommand's run
JOB_TYPES = {"fit": "train", "validate": "validate", "test": "test", "predict": "predict"}


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


def define_best_summaries(trainer: Trainer) -> None:
    """Keep the best value of each validation metric (``BEST_SUMMARIES``) in the run summary;
    nothing without a wandb logger. Call on global rank 0 before the first validation."""
    logger = wandb_logger(trainer)
    if logger is None:
        return
    for name, summary in BEST_SUMMARIES.items():
        # WandbLogger steps every metric by "trainer/global_step"; a definition replaces that
        logger.experiment.define_metric(
            name, step_metric="trainer/global_step", step_sync=True, summary=summary
        )


def run_info(trainer: Trainer) -> dict[str, str | None] | None:
    """``{"entity", "project", "id", "name", "group", "model_artifact"}`` of the trainer's wandb
    run, or None; ``model_artifact`` is the name of the artifact the logger saves checkpoints
    as (``log_model``), else None."""
    logger = wandb_logger(trainer)
    if logger is None:
        return None
    run = logger.experiment
    # WandbLogger names its checkpoint artifacts `checkpoint_name`, else "model-<run id>"
    artifact = (logger._checkpoint_name or f"model-{run.id}") if logger._log_model else None
    return {
        "entity": run.entity or None,
        "project": run.project,
        "id": run.id,
        "name": run.name,
        "group": run.group or None,
        "model_artifact": artifact,
    }


def wandb_logger_arguments(trainer_config: Namespace | None) -> list[Namespace]:
    """The ``init_args`` of every ``WandbLogger`` among the trainer config's loggers."""
    logger = trainer_config.get("logger") if trainer_config is not None else None
    loggers = logger if isinstance(logger, list) else [logger]
    return [
        entry.init_args
        for entry in loggers
        if isinstance(entry, Namespace)
        and str(entry.get("class_path", "")).rsplit(".", 1)[-1] == WandbLogger.__name__
    ]


def link_wandb_loggers(
    trainer_config: Namespace | None, subcommand: str, ckpt_path: str | None
) -> None:
    """Fill in the wandb run of each ``WandbLogger`` in the (parsed) trainer config.

    The job type is the subcommand's (``train`` for ``fit``). With ``ckpt_path`` a checkpoint
    of a wandb run, ``fit`` continues that run (same id, ``resume="allow"``, same project) and
    other subcommands join its group; otherwise the group is the run's name (none for a run
    without a name: wandb draws one), which ``faceinpaint eval`` joins. Settings the config
    gives are kept.
    """
    loggers = wandb_logger_arguments(trainer_config)
    if not loggers:
        return
    previous = None
    if ckpt_path and Path(ckpt_path).is_file():
        previous = read_checkpoint(ckpt_path).get(CHECKPOINT_KEY)
    for arguments in loggers:
        if previous and subcommand == "fit" and arguments.get("id") is None:
            arguments.id = previous["id"]
            arguments.resume = arguments.get("resume") or "allow"
            arguments.project = arguments.get("project") or previous.get("project")
        arguments.job_type = arguments.get("job_type") or JOB_TYPES[subcommand]
        fallback = (previous or {}).get("group") or arguments.get("name") or arguments.get("id")
        arguments.group = arguments.get("group") or fallback
