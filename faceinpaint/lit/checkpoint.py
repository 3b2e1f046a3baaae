"""Checkpoints that survive clusters: written atomically, read safely, saved on SIGTERM, resumed by rules.

``ModelCheckpoint``: Lightning 2.x writes ``last.ckpt`` (``save_last: true``) only when it also
writes a top-k file. Under a monitored metric that did not improve at the last validation,
``last.ckpt`` then stays at the best step: the weights a run ends with are never written, and a
job resumed from ``last.ckpt`` after preemption silently repeats training. The VAE-GAN makes this
likely: its curriculum stops the run at the last stage boundary, and the adversarial stages can
lower the validation PSNR that the checkpoint monitors. This subclass keeps Lightning's top-k
selection and file names as they are and, after each validation, each training epoch that saves,
at the end of training and when the job receives SIGTERM (SLURM, Kubernetes, ``timeout``),
writes ``last.ckpt`` again whenever the newest global step is not on disk yet. Configs name it
instead of Lightning's class: ``class_path: faceinpaint.lit.checkpoint.ModelCheckpoint``.

Without a ``dirpath`` its folder is ``<logger save_dir>/<logger name>`` (``runs/<name>``), with no
version or run id in it, so ``--ckpt_path runs/<name>/last.ckpt`` resumes any config's run. A
training run holds ``run.lock`` in that folder (``faceinpaint.lit.run_lock``): a second live run
on the same folder stops instead of overwriting the first one's checkpoints.

It also makes the trainer write every checkpoint through ``faceinpaint.io.atomic_write``
(a temporary file in the destination folder, fsync, rename): Lightning's own writer stages the
file in ``$TMPDIR`` and moves it, which on another filesystem is a copy over ``last.ckpt`` that a
kill leaves empty. Checkpoints are read by ``faceinpaint.lit.loading.read_lightning_checkpoint``
(``torch.load(weights_only=True)``, no code run; an unreadable one is an error naming the newest
readable checkpoint beside it).

``check_resume``: which model settings may differ from the checkpoint's when a run resumes.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override

from faceinpaint.io import atomic_write, remove_dead_temporaries, write_text
from faceinpaint.lit.loading import read_lightning_checkpoint
from faceinpaint.lit.method import DeclaredModule, import_class, resolve_class_path
from faceinpaint.lit.run_dir import run_directory
from faceinpaint.lit.run_lock import RunLock

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes through ``atomic_write`` and reads with
    ``read_lightning_checkpoint``."""

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__} takes no storage_options, got {storage_options!r}"
            )
        with atomic_write(path, "wb") as handle:
            torch.save(checkpoint, handle)

    @override
    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if weights_only is False:
            return super().load_checkpoint(path, map_location, weights_only=False)
        return read_lightning_checkpoint(path, map_location)


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with ``last.ckpt`` kept at the newest global step, saved on
    SIGTERM and Ctrl-C, and every checkpoint of the trainer written atomically."""

    stop_signal = signal.SIGTERM  # the signal that stopped training: SIGINT for Ctrl-C
    _sigint_before: Any = None  # the SIGINT handler while training installs its own

    _run_lock: RunLock | None = None  # held by rank 0 while it trains (faceinpaint.lit.run_lock)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None and trainer.loggers:
            # runs/<name>, not Lightning's runs/<name>/version_N/checkpoints (or the wandb run
            # id): the resume command is then `--ckpt_path runs/<name>/last.ckpt` for any run.
            logger = trainer.loggers[0]
            # WandbLogger.name is the project; the run's name is the experiment's (rank 0's
            # value is broadcast by Lightning's setup).
            name = logger.experiment.name if isinstance(logger, WandbLogger) else logger.name
            self.dirpath = str(Path(logger.save_dir or trainer.default_root_dir) / str(name))
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        if trainer.is_global_zero and stage == "fit" and self._run_lock is None:
            self._run_lock = RunLock.acquire(self.dirpath)
        if trainer.is_global_zero and Path(self.dirpath).is_dir():
            remove_dead_temporaries(self.dirpath)  # saves killed before their rename

    @override
    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        if self.save_last and not self.last_model_path:
            # A new run in a folder with a last.ckpt replaces it (Lightning would write
            # last-v1.ckpt): runs/<name>/last.ckpt is always the newest run's newest state.
            name = self.CHECKPOINT_NAME_LAST
            self.last_model_path = self.format_checkpoint_name(monitor_candidates, name)
        super()._save_last_checkpoint(trainer, monitor_candidates)

    def _save_newest(self, trainer: pl.Trainer) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        # In "link" mode Lightning would link last.ckpt to the newest top-k file, an older state.
        self._last_checkpoint_saved = ""
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    @override
    def _should_save_on_train_epoch_end(self, trainer: pl.Trainer) -> bool:
        # Lightning answers False whenever validation is scheduled in batches
        # (check_val_every_n_epoch None) and then saves on a validation end, which never comes
        # when validation is off: last.ckpt would wait for the end of training or a signal.
        if self._save_on_train_epoch_end is None and trainer.limit_val_batches == 0:
            return True
        return super()._should_save_on_train_epoch_end(trainer)

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

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if trainer.ckpt_path and trainer.is_global_zero:
            note_resume(trainer)
        self._stop_on_sigint()

    def _stop_on_sigint(self) -> None:
        """Ctrl-C (SIGINT) stops training as SIGTERM does, saved at the end of the current batch;
        a second Ctrl-C interrupts at once (Lightning's KeyboardInterrupt shutdown, no save)."""
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is not threading.main_thread() or previous == signal.SIG_IGN:
            return

        def on_sigint(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, previous)
            self.stop_signal = signal.SIGINT
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler: stop after this batch

        signal.signal(signal.SIGINT, on_sigint)
        self._sigint_before = previous

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        if self._sigint_before is not None:
            signal.signal(signal.SIGINT, self._sigint_before)
            self._sigint_before = None
        self._release_run_lock()

    @override
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """A run stopped mid-epoch (``max_steps``, or the module's ``should_stop``) is saved as
        mid-epoch. Lightning ends the epoch loop early and counts the epoch as processed, so a
        resume would start the next epoch and its batch counter mid-way (a resume to a larger
        ``max_steps`` stopped at ``max_epochs`` early)."""
        epoch = trainer.fit_loop.epoch_progress.total
        last_batch_done = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if trainer.state.fn != "fit" or epoch.processed != epoch.started or last_batch_done:
            return
        saved = checkpoint["loops"]["fit_loop"]["epoch_progress"]
        for counter in ("total", "current"):
            saved[counter]["processed"] = saved[counter]["completed"] = (
                saved[counter]["started"] - 1
            )

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning turns SIGTERM into SIGTERMException at the end of the current training batch
        # (every rank at once under DDP): the state is that of a finished step.
        if isinstance(exception, SIGTERMException):
            self._save_newest(trainer)
        self._release_run_lock()

    def _release_run_lock(self) -> None:
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None


RESUME_NOTE = "resumed_from.json"


def note_resume(trainer: pl.Trainer) -> Path | None:
    """Write ``resumed_from.json`` (checkpoint, global step) into the resumed run's folder (a run
    with a logger; without one, only the warning).

    The run that was interrupted logged past its last checkpoint; this run logs those steps
    again. Its metrics supersede the earlier run's from ``global_step`` on: read the earlier
    run's rows up to that step and this run's after it.
    """
    step = trainer.global_step
    path = None
    if trainer.logger is not None:
        path = run_directory(trainer) / RESUME_NOTE
        write_text(json.dumps({"checkpoint": str(trainer.ckpt_path), "global_step": step}), path)
    log.warning(
        "resumed from %s at global step %d: the earlier run's metrics after this step are "
        "superseded by this run's%s",
        trainer.ckpt_path,
        step,
        f" (noted in {path})" if path else "",
    )
    return path


# ----------------------------------------------------------------------------- resume rules
def _plain(value: Any) -> Any:
    """Tuples as lists, so that a YAML list equals the tuple saved in a checkpoint."""
    return json.loads(json.dumps(value, default=str))


def check_resume(
    class_path: str,
    settings: Mapping[str, Any],
    checkpoint: Mapping[str, Any],
    path: str,
    fit: bool,
) -> None:
    """Raise ``ValueError`` naming the setting when ``settings`` (the config's model arguments)
    may not differ from the checkpoint's under this subcommand.

    Every subcommand: the checkpoint holds the config's model class, and the class's
    ``architecture`` settings are the checkpoint's. ``fit`` also: its ``optimizer_settings`` are
    the checkpoint's (its optimizer state would override them), and its ``resume_rules`` hold
    (the VAE-GAN's stage boundaries move only where not reached yet). Any other
    setting takes the config's value from the resumed step on (or for the whole of ``test``).
    """
    saved = dict(checkpoint.get("hyper_parameters") or {})
    saved_class = saved.pop("_class_path", None)
    class_path = resolve_class_path(class_path)
    saved_class = resolve_class_path(saved_class) if saved_class is not None else None
    if saved_class is not None and saved_class != class_path:
        raise ValueError(
            f"checkpoint {path!r} holds a {saved_class}, but the config's model is {class_path}: "
            "use the config the checkpoint was trained with"
        )
    cls = import_class(class_path)
    if not issubclass(cls, DeclaredModule):
        return
    saved = cls.current_hparams(saved)
    # a checkpoint saved before an architecture setting existed was built with its default
    former = inspect.signature(cls).parameters
    for name in cls.architecture:
        if name not in saved and former[name].default is not inspect.Parameter.empty:
            saved[name] = former[name].default
    fixed = cls.architecture + (cls.optimizer_settings if fit else ())
    for name in fixed:
        if name in saved and name in settings and _plain(saved[name]) != _plain(settings[name]):
            kind = "the architecture" if name in cls.architecture else "the optimizer state"
            raise ValueError(
                f"{name}: checkpoint {path!r} has {_plain(saved[name])}, the config "
                f"{_plain(settings[name])}; {name} is part of {kind} and cannot change on "
                f"resume (pass --model.init_args.{name} {json.dumps(_plain(saved[name]))}, or "
                "start a new run)"
            )
    for name, rule in (cls.resume_rules if fit else {}).items():
        if name in saved and name in settings:
            old, new = _plain(saved[name]), _plain(settings[name])
            if old != new and (problem := rule(old, new, checkpoint)):
                raise ValueError(f"{name}: {old} -> {new} cannot apply on resume: {problem}")
