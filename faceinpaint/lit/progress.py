"""A progress bar that counts what ends a curriculum run: generator updates, stage by stage.

The VAE-GAN trains until its generator-update clock reaches the last stage boundary, with
``max_epochs: -1``: Lightning's bar restarts every epoch and never shows how far the run is.
:class:`CurriculumProgressBar` runs one bar over the whole run (total = the last boundary,
resumed runs start where they stopped) described by the stage, with the updates in its postfix.
Modules opt in by exposing ``generator_updates``, ``curriculum_stage`` and ``boundaries``; for any other
module it is Lightning's bar.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


def _curriculum(module: pl.LightningModule) -> tuple[int, int, int] | None:
    """(generator updates done, current stage, last boundary) of a curriculum module, else None."""
    if not all(
        hasattr(module, name) for name in ("generator_updates", "curriculum_stage", "boundaries")
    ):
        return None
    return int(module.generator_updates), int(module.curriculum_stage), int(module.boundaries[-1])


class CurriculumProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, over generator updates (not batches of an epoch) for curricula."""

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        clock = _curriculum(trainer.lightning_module)
        if clock is None:
            super().on_train_epoch_start(trainer, *args)
            return
        bar = self.train_progress_bar
        if bar.disable:
            return
        updates, stage, total = clock
        # Lightning's reset per epoch would show "Epoch N: 0/<batches>", with a negative rate
        # (n back to 0 below the last epoch's initial), before this bar's own line
        bar.set_description(f"stage {stage}/3, epoch {trainer.current_epoch}", refresh=False)
        if bar.total != total:  # the run's first epoch: the bar becomes the run's
            bar.unit = " G update"  # "12.5 G update/s", not giga-updates
            bar.reset(total=total)
            # a resumed run's rate counts from here
            bar.initial = bar.n = bar.last_print_n = updates
        bar.refresh()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        clock = _curriculum(pl_module)
        if clock is None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        updates, stage, total = clock
        bar = self.train_progress_bar
        if bar is None or bar.disable or not self._should_update(updates, total):
            return
        bar.n = updates
        bar.set_description(f"stage {stage}/3, epoch {trainer.current_epoch}", refresh=False)
        bar.set_postfix(self.get_metrics(trainer, pl_module))

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        clock = _curriculum(pl_module)
        if clock is not None:
            metrics["G updates"] = f"{clock[0]}/{clock[2]}"
            metrics.pop("train/stage", None)
        return metrics


def curriculum_progress_bar(trainer: pl.Trainer) -> list[pl.Callback]:
    """``[CurriculumProgressBar]`` with the refresh rate of the trainer's tqdm bar, to return
    from ``configure_callbacks`` (it replaces that bar); ``[]`` when the trainer shows none or
    another kind (e.g. Rich)."""
    current = trainer.progress_bar_callback
    if type(current) is not TQDMProgressBar:
        return []
    return [CurriculumProgressBar(refresh_rate=current.refresh_rate)]
