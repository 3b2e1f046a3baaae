"""The ``faceinpaint`` command.

``faceinpaint fit|validate|test|predict --config configs/....yaml`` is LightningCLI
(model in subclass mode, the shared ``FaceDataModule`` as data). Other subcommands
(``prepare``, ``preview``, ``landmarks annotate``, ...) are typed functions parsed by
jsonargparse; each accepts the same ``--config`` YAML and reads its ``data:`` section.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from faceinpaint.commands.train import (
    OneLineErrors,
    one_line_input_errors,
    require_celeba_root,
    run_trainer_command,
)
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.device import configure_malloc

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")

# Extra subcommands: words -> "module:function". Imported only when called.
EXTRA_COMMANDS: dict[tuple[str, ...], str] = {
    ("prepare",): "faceinpaint.commands.data:prepare",
    ("preview",): "faceinpaint.commands.data:preview",
    ("landmarks", "annotate"): "faceinpaint.commands.annotate:annotate",
    ("bench",): "faceinpaint.bench.suite:bench",
    ("eval",): "faceinpaint.eval.runner:evaluate",
    ("score",): "faceinpaint.eval.runner:score",
    ("masks", "export"): "faceinpaint.eval.exchange:export_masks",
    ("inpaint",): "faceinpaint.photo.inpaint:inpaint",
    ("demo",): "faceinpaint.commands.demo:demo",
    ("plot",): "faceinpaint.eval.plots:plot",
}

# Extra commands whose first argument may be given without its flag: `faceinpaint plot RUN_DIR`.
POSITIONAL_FIRST: dict[tuple[str, ...], str] = {("plot",): "--run_dir"}

TRAINER_SUMMARIES = {
    "fit": "train the model of a config (LightningCLI; --print_config shows the resolved config)",
    "validate": "one validation pass of a checkpoint (--ckpt_path)",
    "test": "test a checkpoint (--ckpt_path) on the test split",
    "predict": "predictions of a checkpoint (--ckpt_path)",
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


def command_summaries() -> dict[str, str]:
    """Every command with a one-line description (extra commands: their docstring's first line)."""
    summaries = dict(TRAINER_SUMMARIES)
    for words, target in EXTRA_COMMANDS.items():
        summaries[" ".join(words)] = (inspect.getdoc(_load(target)) or "").splitlines()[0]
    return summaries


def print_overview() -> None:
    """``faceinpaint --help``: every command, one line each."""
    summaries = command_summaries()
    width = max(map(len, summaries))
    print("usage: faceinpaint COMMAND [--config CFG.yaml] [options]\n\ncommands:")
    for name, summary in summaries.items():
        print(f"  {name:<{width}}  {summary}")
    print("\n'faceinpaint COMMAND --help' lists a command's options.")


def print_group(group: str) -> None:
    """``faceinpaint landmarks --help``: the subcommands of a group of commands, one line each."""
    summaries = {
        name: text for name, text in command_summaries().items() if name.split()[0] == group
    }
    width = max(map(len, summaries))
    print(f"usage: faceinpaint {group} SUBCOMMAND [options]\n\ncommands:")
    for name, summary in summaries.items():
        print(f"  {name:<{width}}  {summary}")
    print(f"\n'faceinpaint {group} SUBCOMMAND --help' lists a command's options.")


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def extra_parser(words: tuple[str, ...], func: Callable[..., Any]) -> ArgumentParser:
    parser = OneLineErrors(prog="faceinpaint " + " ".join(words), description=inspect.getdoc(func))
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


def configure_logging() -> None:
    """INFO lines of the project's modules (cache building, files written, skipped inputs) on
    stderr with the time; nothing changes if the application configured logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if logging.getLogger("faceinpaint").level == logging.NOTSET:
        logging.getLogger("faceinpaint").setLevel(logging.INFO)


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
    configure_logging()
    if words in POSITIONAL_FIRST and argv and not argv[0].startswith("-"):
        argv = [POSITIONAL_FIRST[words], *argv]
    func = _load(EXTRA_COMMANDS[words])
    parser = extra_parser(words, func)
    cfg = parser.parse_args(join_negative_values(argv))
    require_celeba_root(cfg.get("data"))
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
    if not argv or argv[0] in ("-h", "--help"):
        print_overview()
        return None
    words = _extra_command(argv)
    if words is not None:
        return run_extra(words, argv[len(words) :])
    groups = {command[0]: command for command in EXTRA_COMMANDS if len(command) > 1}
    if argv[0] in groups:
        if argv[1:2] in ([], ["-h"], ["--help"]):
            print_group(argv[0])
            return None
        choices = ", ".join(" ".join(c) for c in EXTRA_COMMANDS if c[0] == argv[0])
        raise SystemExit(f"faceinpaint: unknown command {' '.join(argv[:2])!r}; use {choices}")
    if argv and not argv[0].startswith("-") and argv[0] not in TRAINER_COMMANDS:
        groups = sorted({w[0] for w in EXTRA_COMMANDS})
        raise SystemExit(
            f"faceinpaint: unknown command {argv[0]!r}; use one of "
            f"{', '.join(TRAINER_COMMANDS + tuple(groups))}"
        )
    return run_trainer_command(argv, from_sys_argv=args is None)


def main() -> None:
    """Console-script entry point.

    Bad input to any command (arguments, configs, data, checkpoints) and a full disk end with a
    one-line message and exit status 2; other errors once a training command's loop has
    started keep Lightning's full tracebacks.
    """
    try:
        configure_malloc()  # freed CPU memory kept for reuse (faceinpaint.device)
    except ValueError as problem:
        print(f"faceinpaint: error: {problem}", file=sys.stderr)
        sys.exit(2)
    words = _extra_command(sys.argv[1:])
    if words is None:
        cli_main()
        return
    with one_line_input_errors(" ".join(words)):
        cli_main()
