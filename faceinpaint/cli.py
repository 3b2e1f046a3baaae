"""The ``faceinpaint`` command.

``faceinpaint fit|validate|test|predict --config configs/....yaml`` is LightningCLI
(model in subclass mode, the shared ``FaceDataModule`` as data). Other subcommands
(``prepare``, ``preview``, ``landmarks annotate``, ...) are typed functions parsed by
jsonargparse; each accepts the same ``--config`` YAML and reads its ``data:`` section.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import netrc
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from jsonargparse import ActionConfigFile, ArgumentParser
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.io import write_text
from faceinpaint.lit.checkpoint import check_resume, read_checkpoint
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
    ("demo",): "faceinpaint.demo:demo",
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


# Errors that mean bad input (arguments, config, files): one line and exit status 2.
INPUT_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError)


@contextlib.contextmanager
def one_line_input_errors(command: str) -> Iterator[None]:
    """Bad input ends with ``faceinpaint <command>: error: <message>`` and exit status 2."""
    try:
        yield
    except INPUT_ERRORS as err:
        print(f"faceinpaint {command}: error: {essential_line(str(err))}", file=sys.stderr)
        raise SystemExit(2) from None


def essential_line(message: str) -> str:
    """One line out of jsonargparse's multi-line report of a value that failed (its first
    ``- <problem>`` bullet, less ``Expected a NoneType``, with the lines nested under it)."""
    lines = message.strip().splitlines()
    for number, line in enumerate(lines):
        text = line.strip()
        if text.startswith("- ") and not text.startswith("- Expected a "):
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
    if not ckpt_path or not Path(ckpt_path).is_file():
        return False  # "last", "best", "hpc" or a missing file: Lightning resolves or reports it
    checkpoint = read_checkpoint(ckpt_path)
    model = config.get("model")
    class_path = getattr(model, "class_path", None)
    if class_path is None:
        return False
    settings = model.init_args.as_dict() if model.get("init_args") is not None else {}
    check_resume(class_path, settings, checkpoint, str(ckpt_path), fit=subcommand == "fit")
    return True


def exit_after_sigterm(trainer: Trainer, subcommand: str) -> NoReturn:
    """Exit with status 128 + SIGTERM, saying where the run's newest state is."""
    last = getattr(trainer.checkpoint_callback, "last_model_path", "")
    where = f"; resume with --ckpt_path {last}" if subcommand == "fit" and last else ""
    if trainer.is_global_zero:
        print(
            f"faceinpaint {subcommand}: stopped by SIGTERM at global step {trainer.global_step}"
            f"{where}",
            file=sys.stderr,
        )
    raise SystemExit(128 + signal.SIGTERM)


class OneLineErrorParser(LightningArgumentParser):
    """A parse error (bad type, unknown option) in one line and exit status 2, not the usage."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        command = " ".join(["faceinpaint", *self.prog.replace(" [options]", "").split()[1:]])
        print(f"{command}: error: {essential_line(message)} (see --help)", file=sys.stderr)
        raise SystemExit(2)


class FaceInpaintCLI(LightningCLI):
    """LightningCLI with the project's DataModule; configs name the model by ``class_path``.

    Resuming checks the config against the checkpoint (``apply_resume_rules``) instead of
    replacing the config's model settings by the checkpoint's; bad arguments end in one line
    (exit 2); SIGTERM ends with exit status 143 after the checkpoint callback saved the step.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parser_class", OneLineErrorParser)
        super().__init__(*args, **kwargs)

    def _parse_ckpt_path(self) -> None:
        with one_line_input_errors(self.config.get("subcommand") or "faceinpaint"):
            if not apply_resume_rules(self):
                super()._parse_ckpt_path()

    def instantiate_classes(self) -> None:
        with one_line_input_errors(self.config.get("subcommand") or "faceinpaint"):
            super().instantiate_classes()

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except SIGTERMException:
            exit_after_sigterm(self.trainer, subcommand)


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
        text = self.parser.dump(self.config, skip_none=False)
        write_text(text, path)


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


def join_negative_values(argv: list[str]) -> list[str]:
    """``--box -50,-50,20,20`` as ``--box=-50,-50,20,20``: argparse would read a value that
    starts with ``-`` and is not a plain number as the next option ("expected one argument")."""
    joined: list[str] = []
    for token in argv:
        previous = joined[-1] if joined else ""
        if (
            re.match(r"-\d", token)
            and previous.startswith("--")
            and "=" not in previous
            and previous != "--"
        ):
            joined[-1] = f"{previous}={token}"
        else:
            joined.append(token)
    return joined


def run_extra(words: tuple[str, ...], argv: list[str]) -> Any:
    func = _load(EXTRA_COMMANDS[words])
    parser = extra_parser(words, func)
    cfg = parser.parse_args(join_negative_values(argv))
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

    Bad input to an extra command (``inpaint``, ``eval``, ...), and bad arguments or configs of
    a training command, end with a one-line message and exit status 2; errors while a training
    command runs keep Lightning's full tracebacks.
    """
    words = _extra_command(sys.argv[1:])
    if words is None:
        cli_main()
        return
    with one_line_input_errors(" ".join(words)):
        cli_main()
