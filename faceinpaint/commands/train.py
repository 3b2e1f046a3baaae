"""``faceinpaint fit|validate|test|predict``: LightningCLI with the project's DataModule.

The model is given in subclass mode (``class_path`` / ``init_args`` in the config); resuming
checks the config against the checkpoint; bad arguments end in one line (exit status 2).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.sources import CELEBA_BOXES, CELEBA_IMAGES, CELEBA_WILD_IMAGES
from faceinpaint.device import cpu_has_bf16
from faceinpaint.io import disk_full, write_text
from faceinpaint.lit.checkpoint import check_resume
from faceinpaint.lit.distributed import without_slurm_requeue
from faceinpaint.lit.loading import read_checkpoint
from faceinpaint.lit.run_dir import run_directory
from faceinpaint.lit.wandb_run import CHECKPOINT_KEY as WANDB_CHECKPOINT_KEY
from faceinpaint.lit.wandb_run import (
    define_best_summaries,
    link_wandb_loggers,
    log_config,
    run_info,
    wandb_offline_unless_logged_in,
)
from faceinpaint.safe_load import UntrustedCheckpointError

_MODEL_IMAGE_SIZE_FLAGS = ("--model.image_size", "--model.init_args.image_size")

# Errors that mean bad input (arguments, config, files): one line and exit status 2.
INPUT_ERRORS = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
)
# ``--ckpt_path`` values that Lightning resolves itself (no file of that name is read).
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


@contextlib.contextmanager
def one_line_input_errors(command: str) -> Iterator[None]:
    """Bad input, and a full disk, end with ``faceinpaint <command>: error: <message>`` and exit
    status 2."""
    try:
        yield
    except Exception as err:
        problem = disk_full(err) or (err if isinstance(err, INPUT_ERRORS) else None)
        if problem is None:
            raise
        print(f"faceinpaint {command}: error: {essential_line(str(problem))}", file=sys.stderr)
        raise SystemExit(2) from None


def essential_line(message: str) -> str:
    """One line out of jsonargparse's multi-line report of a value that failed (its first
    indented ``- <problem>`` bullet, less ``Expected a NoneType``, with the lines nested under
    it); other messages with their lines joined (a list at column 0 is a value, not a bullet)."""
    lines = message.strip().splitlines()
    for number, line in enumerate(lines):
        text = line.strip()
        if line[:1].isspace() and text.startswith("- ") and not text.startswith("- Expected a "):
            indent = len(line) - len(line.lstrip())
            nested = []
            for below in lines[number + 1 :]:
                if len(below) - len(below.lstrip()) <= indent:
                    break
                nested.append(below.strip())
            return " ".join([text[2:], *nested])
    return " ".join(line.strip() for line in lines)


def apply_resume_rules(cli: LightningCLI) -> bool:
    """With ``--ckpt_path FILE`` and a model in the config, check the config against the
    checkpoint (``faceinpaint.lit.checkpoint.check_resume``) and keep the config's settings;
    False where Lightning's own handling applies (no model given: it comes from the checkpoint)."""
    subcommand = cli.config.get("subcommand")
    config = cli.config[subcommand] if subcommand else None
    ckpt_path = config.get("ckpt_path") if config else None
    if not ckpt_path or is_lightning_ckpt_name(str(ckpt_path)):
        return False
    checkpoint = read_checkpoint(ckpt_path)  # a missing, directory or unreadable file: one line
    model = config.get("model")
    class_path = getattr(model, "class_path", None)
    if class_path is None:
        return False
    settings = model.init_args.as_dict() if model.get("init_args") is not None else {}
    check_resume(class_path, settings, checkpoint, str(ckpt_path), fit=subcommand == "fit")
    return True


def is_lightning_ckpt_name(ckpt_path: str) -> bool:
    """``last``, ``best``, ``hpc``, ``registry[:...]`` or a URL: Lightning finds the file."""
    special = ckpt_path in LIGHTNING_CKPT_NAMES or ckpt_path.startswith("registry:")
    return special or "://" in ckpt_path


class LoopStarted(Callback):
    """Whether the trainer has reached its loop (sanity check, training, validation, test or
    predict). Errors raised before it come from the run's input (the data folder and its images,
    the checkpoint, the run folder) and end in one line; errors after it keep their traceback."""

    def __init__(self) -> None:
        self.started = False

    def _start(self, *args: Any) -> None:
        self.started = True

    on_sanity_check_start = on_train_start = on_validation_start = _start
    on_test_start = on_predict_start = _start


def exit_after_sigterm(trainer: Trainer, subcommand: str) -> NoReturn:
    """Exit with status 128 + the signal (SIGTERM, or SIGINT for Ctrl-C), saying where the
    run's newest state is."""
    last = getattr(trainer.checkpoint_callback, "last_model_path", "")
    stop_signal = getattr(trainer.checkpoint_callback, "stop_signal", signal.SIGTERM)
    where = f"; resume with --ckpt_path {last}" if subcommand == "fit" and last else ""
    if trainer.is_global_zero:
        print(
            f"faceinpaint {subcommand}: stopped by {stop_signal.name} at global step "
            f"{trainer.global_step}{where}",
            file=sys.stderr,
        )
    raise SystemExit(128 + stop_signal)


class OneLineErrors(ArgumentParser):
    """A parse error (bad type, unknown option, a config that is not YAML) in one line and exit
    status 2, not the usage."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        command = " ".join(["faceinpaint", *self.prog.replace(" [options]", "").split()[1:]])
        print(f"{command}: error: {essential_line(message)} (see --help)", file=sys.stderr)
        raise SystemExit(2)


class OneLineErrorParser(OneLineErrors, LightningArgumentParser):
    """The training commands' parser, with one-line errors."""


class FaceInpaintCLI(LightningCLI):
    """LightningCLI with the project's DataModule; configs name the model by ``class_path``.

    ``data.image_size`` is linked to the model's ``image_size`` (models that take one), so the
    size is written once, in ``data:``, and ``--data.image_size 128`` changes both.

    Resuming checks the config against the checkpoint (``apply_resume_rules``) instead of
    replacing the config's model settings by the checkpoint's; bad arguments end in one line
    (exit 2), as does bad input found before the loop starts and a full disk at any point;
    SIGTERM ends with exit status 143 after the checkpoint callback saved the step.
    In a SLURM job Lightning does not requeue (``without_slurm_requeue``): the batch script does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parser_class", OneLineErrorParser)
        self.loop_started = LoopStarted()
        # every module builds its own optimizers (the GANs two, by hand): no --optimizer flags
        kwargs.setdefault("auto_configure_optimizers", False)
        super().__init__(*args, **kwargs)

    def _parse_ckpt_path(self) -> None:
        with one_line_input_errors(self.config.get("subcommand") or "faceinpaint"):
            if not apply_resume_rules(self):
                super()._parse_ckpt_path()

    def instantiate_classes(self) -> None:
        with one_line_input_errors(self.config.get("subcommand") or "faceinpaint"):
            super().instantiate_classes()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        kwargs.setdefault("plugins", without_slurm_requeue(trainer_config.get("plugins")))
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks.append(self.loop_started)
        warn_emulated_bf16(trainer)
        return trainer

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except SIGTERMException:
            exit_after_sigterm(self.trainer, subcommand)
        except UntrustedCheckpointError as err:
            # a checkpoint opened while the command runs (a DCGAN's encoder or landmark network)
            print(f"faceinpaint {subcommand}: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except Exception as err:
            if self.loop_started.started and disk_full(err) is None:
                raise  # a fault of the run, not of its input: the traceback stays
            with one_line_input_errors(subcommand):
                raise

    def add_arguments_to_parser(self, parser: ArgumentParser) -> None:
        parser.link_arguments("data.image_size", "model.init_args.image_size")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        require_celeba_root(config.get("data"))
        if self.subcommand:
            link_wandb_loggers(config.get("trainer"), self.subcommand, config.get("ckpt_path"))


def warn_emulated_bf16(trainer: Trainer) -> None:
    """One line on stderr when a bf16 precision meets a CPU without native bf16: the configs that
    train on CPUs ask for ``bf16-mixed`` (1.7-2.0x on this project's CPU, docs/RESULTS.md), which
    a CPU without AVX512-BF16 or AMX emulates, slower than fp32."""
    if (
        isinstance(trainer.accelerator, CPUAccelerator)
        and str(trainer.precision).startswith("bf16")
        and not cpu_has_bf16()
    ):
        print(
            f"faceinpaint: warning: trainer.precision {trainer.precision} on a CPU without "
            "native bf16 (AVX512-BF16 or AMX) is emulated and slower than fp32; "
            "pass --trainer.precision 32-true",
            file=sys.stderr,
        )


class RunConfigCallback(SaveConfigCallback):
    """Saves the resolved config into the run's own folder (``faceinpaint.lit.run_dir``), so a
    run is fully described by it and no run overwrites another's config. A run without a
    logger has no folder of its own (``--trainer.logger false``): its config is not saved."""

    def __init__(self, parser, config, config_filename: str = "config.yaml", **kwargs: Any) -> None:
        kwargs["save_to_log_dir"] = False
        super().__init__(parser, config, config_filename, **kwargs)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.logger is None:
            rank_zero_info("No logger, so no run folder: the config is not saved (--print_config)")
            return
        directory = run_directory(trainer)
        path = directory / self.config_filename
        if path.exists():
            raise FileExistsError(
                f"{path} holds another run's config; give this run its own logger version or "
                "save_dir rather than overwrite it"
            )
        text = self.parser.dump(self.config, skip_none=False)
        write_text(text, path)
        log_config(trainer, yaml.safe_load(text))
        define_best_summaries(trainer)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict
    ) -> None:
        """Remember the wandb run (if any) so ``faceinpaint eval`` can group with it."""
        info = run_info(trainer) if trainer.is_global_zero else None
        if info is not None:
            checkpoint[WANDB_CHECKPOINT_KEY] = info


def yaml_problem(err: yaml.YAMLError) -> str:
    """What a YAML parser error says is wrong and where (line and column, from 1)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or " ".join(str(err).split())
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def refuse_conflicting_image_size(argv: list[str]) -> None:
    """``SystemExit`` when a ``--config`` YAML or a flag gives the model an ``image_size`` other
    than the data's at that point. The model's is linked from ``data.image_size`` and
    jsonargparse would drop a different one silently; a later ``--data.image_size`` changes both.
    """
    data_size = inspect.signature(FaceDataModule).parameters["image_size"].default
    for index, arg in enumerate(argv):
        flag, _, inline = arg.partition("=")
        value = inline or (argv[index + 1] if index + 1 < len(argv) else "")
        model_size = None
        if flag == "--config" and Path(value).is_file():
            try:
                sections = yaml.safe_load(Path(value).read_text()) or {}
            except yaml.YAMLError as err:
                print(
                    f"faceinpaint {argv[0]}: error: --config {value} is not valid YAML: "
                    f"{yaml_problem(err)}",
                    file=sys.stderr,
                )
                raise SystemExit(2) from None
            if not isinstance(sections, dict):
                continue  # jsonargparse reports a config that is not a mapping
            data, model = sections.get("data"), sections.get("model")
            if isinstance(data, dict) and "image_size" in data:
                data_size = data["image_size"]
            if isinstance(model, dict):
                model_size = (model.get("init_args") or model).get("image_size")
        elif flag == "--data.image_size" and value:
            data_size = int(value)
        elif flag in _MODEL_IMAGE_SIZE_FLAGS and value:
            model_size = int(value)
        if model_size is not None and model_size != data_size:
            print(
                f"faceinpaint {argv[0]}: error: {value if flag == '--config' else flag} gives the "
                f"model image_size {model_size} but the data {data_size}; the model takes "
                "data.image_size (linked): set data: image_size (or --data.image_size) alone",
                file=sys.stderr,
            )
            raise SystemExit(2)


CELEBA_HOWTO = {
    "celeba": 'torchvision fetches CelebA in the expected layout: python -c "from torchvision.datasets '
    "import CelebA; CelebA('/data', split='all', download=True)\" writes "
    "/data/celeba/img_align_celeba/ and list_eval_partition.txt; then pass --data.root /data/celeba",
    "celeba-wild": "torchvision's python -c \"from torchvision.datasets import CelebA; "
    "CelebA('/data', split='all', download=True)\" writes /data/celeba/list_bbox_celeba.txt and "
    "list_eval_partition.txt but never the in-the-wild images: download the parts of "
    "img_celeba.7z (img_celeba.7z.001, .002, ...) from the Img/ folder of CelebA's Google Drive "
    "or Baidu Pan (links on https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html), run "
    "'7z x img_celeba.7z.001' in /data/celeba (it writes img_celeba/), then pass "
    "--data.root /data/celeba",
}

# What a CelebA layout's root must hold before training starts: its image folder, and for the
# in-the-wild layout the face boxes it crops around.
CELEBA_REQUIRED = {
    "celeba": (CELEBA_IMAGES + "/",),
    "celeba-wild": (CELEBA_WILD_IMAGES + "/", CELEBA_BOXES),
}


def require_celeba_root(data: Any) -> None:
    """``SystemExit`` when ``data.layout`` is a CelebA layout (``celeba``, ``celeba-wild``) but
    ``data.root`` lacks what that layout reads: without a root the DataModule would serve the
    procedural faces instead."""
    layout = None if data is None else data.get("layout")
    required = CELEBA_REQUIRED.get(layout)
    if required is None:
        return
    root = data.get("root")
    missing = [
        entry
        for entry in required
        if root is None
        or not (Path(root) / entry).exists()
        or (Path(root) / entry).is_dir() != entry.endswith("/")
    ]
    if not missing:
        return
    found = "not set" if root is None else f"{root!r}, which holds no {' and no '.join(missing)}"
    raise SystemExit(
        f"faceinpaint: this config needs CelebA (data.layout: {layout}); data.root is {found}. "
        f"{CELEBA_HOWTO[layout]}"
    )


def run_trainer_command(argv: list[str], from_sys_argv: bool = False) -> FaceInpaintCLI:
    """Run ``fit`` / ``validate`` / ``test`` / ``predict`` with ``argv`` (``sys.argv`` when
    ``from_sys_argv``)."""
    refuse_conflicting_image_size(argv)
    wandb_offline_unless_logged_in()
    return FaceInpaintCLI(
        LightningModule,
        FaceDataModule,
        subclass_mode_model=True,
        args=None if from_sys_argv else argv,
        save_config_callback=RunConfigCallback,
    )
