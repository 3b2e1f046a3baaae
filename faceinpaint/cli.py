"""The ``faceinpaint`` command.

``faceinpaint fit|validate|test|predict --config configs/....yaml`` is LightningCLI
(model in subclass mode, the shared ``FaceDataModule`` as data). Other subcommands
(``prepare``, ``preview``, ``landmarks annotate``, ...) are typed functions parsed by
jsonargparse; each accepts the same ``--config`` YAML and reads its ``data:`` section.
"""

from __future__ import annotations

import importlib
import inspect
import netrc
import os
import sys
from collections.abc import Callable
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.lit.run_dir import run_directory

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")

# Extra subcommands: words -> "module:function". Imported only when called.
EXTRA_COMMANDS: dict[tuple[str, ...], str] = {
    ("prepare",): "faceinpaint.data.commands:prepare",
    ("preview",): "faceinpaint.data.commands:preview",
    ("landmarks", "annotate"): "faceinpaint.landmarks.annotate:annotate",
    ("bench",): "faceinpaint.eval.bench:bench",
    ("eval",): "faceinpaint.eval.runner:evaluate",
    ("inpaint",): "faceinpaint.eval.inpaint:inpaint",
    ("demo",): "faceinpaint.commands.demo:demo",
}

# Top-level sections of a training YAML that extra commands accept and ignore.
_TRAINING_SECTIONS = (
    "model",
    "trainer",
    "seed_everything",
    "ckpt_path",
    "optimizer",
    "lr_scheduler",
)


class FaceInpaintCLI(LightningCLI):
    """LightningCLI with the project's DataModule; configs name the model by ``class_path``."""


class RunConfigCallback(SaveConfigCallback):
    """Saves the resolved config into the run's own folder (``faceinpaint.lit.run_dir``), so a
    run is fully described by it and no run overwrites another's config."""

    def __init__(self, parser, config, config_filename: str = "config.yaml", **kwargs: Any) -> None:
        kwargs["save_to_log_dir"] = False
        super().__init__(parser, config, config_filename, **kwargs)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        directory = run_directory(trainer)
        path = directory / self.config_filename
        if path.exists():
            raise FileExistsError(
                f"{path} holds another run's config; give this run its own logger version or "
                "save_dir rather than overwrite it"
            )
        directory.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(path), skip_none=False, multifile=self.multifile)


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


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def extra_parser(words: tuple[str, ...], func: Callable[..., Any]) -> ArgumentParser:
    parser = ArgumentParser(prog="faceinpaint " + " ".join(words), description=inspect.getdoc(func))
    parser.add_argument(
        "--config",
        action=ActionConfigFile,
        help="a YAML: its data: section configures the data; training sections are ignored",
    )
    takes_data = "data" in inspect.signature(func).parameters
    if takes_data:
        parser.add_class_arguments(FaceDataModule, "data")
    parser.add_function_arguments(func, skip={"data"} if takes_data else set())
    for section in _TRAINING_SECTIONS:
        parser.add_argument(f"--{section}", type=Any, default=None, help="ignored here")
    return parser


def run_extra(words: tuple[str, ...], argv: list[str]) -> Any:
    func = _load(EXTRA_COMMANDS[words])
    parser = extra_parser(words, func)
    cfg = parser.parse_args(argv)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    init = instantiate(cfg)
    kwargs = {name: init[name] for name in inspect.signature(func).parameters if name in init}
    return func(**kwargs)


def _extra_command(argv: list[str]) -> tuple[str, ...] | None:
    for words in EXTRA_COMMANDS:
        if tuple(argv[: len(words)]) == words:
            return words
    return None


def cli_main(args: list[str] | None = None) -> Any:
    """Entry point of ``faceinpaint`` and ``python -m faceinpaint``; ``args`` replaces ``sys.argv[1:]``."""
    argv = list(sys.argv[1:] if args is None else args)
    words = _extra_command(argv)
    if words is not None:
        return run_extra(words, argv[len(words) :])
    if argv and not argv[0].startswith("-") and argv[0] not in TRAINER_COMMANDS:
        groups = sorted({w[0] for w in EXTRA_COMMANDS})
        raise SystemExit(
            f"faceinpaint: unknown command {argv[0]!r}; use one of "
            f"{', '.join(TRAINER_COMMANDS + tuple(groups))}"
        )
    wandb_offline_unless_logged_in()
    return FaceInpaintCLI(
        LightningModule,
        FaceDataModule,
        subclass_mode_model=True,
        args=None if args is None else argv,
        save_config_callback=RunConfigCallback,
    )


def main() -> None:
    """Console-script entry point.

    Bad input to an extra command (``inpaint``, ``eval``, ...) ends with its one-line message and
    exit status 2; training commands keep Lightning's full tracebacks.
    """
    words = _extra_command(sys.argv[1:])
    if words is None:
        cli_main()
        return
    try:
        cli_main()
    except (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError) as err:
        print(f"faceinpaint {' '.join(words)}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
