"""A ``ModelCheckpoint`` whose ``last.ckpt`` always holds the newest state of the run.

Lightning 2.x writes ``last.ckpt`` (``save_last: true``) only when it also writes a top-k file.
Under a monitored metric that did not improve at the last validation, ``last.ckpt`` then stays
at the best step: the weights a run ends with are never written, and a job resumed from
``last.ckpt`` after preemption silently repeats training. The VAE-GAN makes this likely: its
curriculum stops the run at the last stage boundary, and the adversarial stages can lower the
validation PSNR that the checkpoint monitors.

This subclass keeps Lightning's top-k selection and file names as they are and, after each
validation, each training epoch that saves, and at the end of training, writes ``last.ckpt``
again whenever the newest global step is not on disk yet. Configs name it instead of Lightning's
class: ``class_path: faceinpaint.lit.checkpoint.ModelCheckpoint``.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from typing_extensions import override


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with ``last.ckpt`` kept at the newest global step."""

    def _save_newest(self, trainer: pl.Trainer) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        # In "link" mode Lightning would link last.ckpt to the newest top-k file, an older state.
        self._last_checkpoint_saved = ""
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_newest(trainer)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_newest(trainer)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_newest(trainer)
