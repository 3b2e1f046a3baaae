"""Bad input found while a command runs (a data folder, an image, a checkpoint file, a config
file) ends in one line naming it and exit status 2, under every command: not a traceback."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FillsUp
from PIL import Image

import faceinpaint.io
from faceinpaint.cli import main

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "configs" / "dcgan" / "smoke.yaml")
EVAL = str(REPO / "configs" / "eval" / "smoke.yaml")
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with a text file as checkpoint, a folder, malformed YAML, YAML that is a
    list and a face folder holding one corrupt image."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.ckpt").write_text("hello\n")
    (tmp_path / "folder.ckpt").mkdir()
    (tmp_path / "bad.yaml").write_text("data: [a\n b: :\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for number in range(1, 9):
        pixels = rng.integers(0, 255, (109, 89, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(faces / f"{number:06d}.png")
    (faces / "000009.png").write_text("not an image")
    return tmp_path


def case_id(value: list[str] | str) -> str:
    """The command and the arguments that differ between cases."""
    if isinstance(value, str):
        return ""
    shared = set(trainer_args("fit")[1:]) | {EVAL}
    return " ".join(arg for arg in value if arg not in shared)


def trainer_args(command: str, *extra: str) -> list[str]:
    return [
        command,
        "--config",
        SMOKE,
        "--trainer.logger",
        "false",
        "--data.cache_dir",
        "cache",
        "--data.cache_workers",
        "1",
        *extra,
    ]


CORRUPT = ["--data.root", "faces", "--data.splits", "{train: 1-6, val: 7-9, test: 7-9}"]
BAD_CHECKPOINTS = [
    ("missing.ckpt", "'missing.ckpt' does not exist"),
    ("folder.ckpt", "'folder.ckpt' is a directory"),
    ("text.ckpt", "'text.ckpt' is not a readable PyTorch checkpoint"),
]
INPAINT = ["inpaint", "--image", "faces/000001.png", "--box", "1,1,4,4", "--out", "out.png"]
CASES = [
    *[
        (trainer_args(command, "--data.root", "nowhere"), "data root nowhere does not exist")
        for command in TRAINER_COMMANDS
    ],
    (["prepare", "--data.root", "nowhere"], "data root nowhere does not exist"),
    (trainer_args("fit", *CORRUPT), "cannot read image faces/000009.png.*skip_corrupt"),
    (["prepare", *CORRUPT], "cannot read image faces/000009.png.*skip_corrupt"),
    (["eval", "--config", EVAL, "--data.root", "nowhere"], "data root nowhere does not exist"),
    (["eval", "--config", EVAL, *CORRUPT], "cannot read image faces/000009.png.*skip_corrupt"),
    (trainer_args("fit", "--data.batch_size", "-4"), "batch_size .* at least 1, got -4"),
    (trainer_args("fit", "--data.batch_size", "0"), "batch_size .* at least 1, got 0"),
    (["prepare", "--data.batch_size", "0"], "batch_size .* at least 1, got 0"),
    *[
        (trainer_args(command, "--ckpt_path", name), message)
        for command in TRAINER_COMMANDS
        for name, message in BAD_CHECKPOINTS
    ],
    *[
        (["eval", "--config", EVAL, "--vaegan", name, "--out", "out"], message)
        for name, message in BAD_CHECKPOINTS
    ],
    *[([*INPAINT, "--checkpoint", name], message) for name, message in BAD_CHECKPOINTS],
    *[
        (trainer_args(command, "--config", "bad.yaml"), "bad.yaml is not valid YAML: expected")
        for command in TRAINER_COMMANDS
    ],
    *[
        ([command, "--config", "bad.yaml"], "Problems parsing config.* line 2, column 3")
        for command in ("prepare", "eval", "inpaint")
    ],
    *[
        ([command, "--config", "list.yaml"], "Unexpected config: - a - b")
        for command in ("fit", "eval")
    ],
    (["plot", "--nope", "3"], "unrecognized arguments: --nope 3"),
    (["inpaint", "--upsample", "abc"], 'key "upsample": Expected .*int.*Got value: abc'),
]


@pytest.mark.parametrize(("argv", "message"), CASES, ids=case_id)
def test_bad_input_is_one_line_and_exit_2_in_every_command(
    inputs: Path,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", ["faceinpaint", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(f"faceinpaint {argv[0]}: error: "), errors[0]
    assert re.search(message, errors[0]), errors[0]
    assert not (inputs / "out.png").exists() and not (inputs / "out").exists()


def test_a_bad_fit_input_is_one_line_and_exit_2_as_a_process(inputs: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "faceinpaint", *trainer_args("fit", "--data.root", "nowhere")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=inputs,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "faceinpaint fit: error: data root nowhere does not exist"
    )


def test_a_full_disk_is_one_line_and_exit_2_in_prepare(
    inputs: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = shutil.disk_usage(inputs)._replace(free=1000)
    monkeypatch.setattr(faceinpaint.io.shutil, "disk_usage", lambda path: usage)
    argv = ["prepare", "--data.synthetic_size", "20", "--data.image_size", "16"]
    monkeypatch.setattr(sys, "argv", ["faceinpaint", *argv, "--data.cache_dir", "cache"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert re.match(
        r"faceinpaint prepare: error: no space left for .*images.npy: it needs [\d,]+ bytes and "
        r"1,000 bytes are free",
        errors[0],
    )
    assert list((inputs / "cache").iterdir()) == []


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_exit_2_in_fit(
    inputs: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save fails once training ran (a traceback for other errors): one line, no .tmp left."""
    save = torch.save

    def fills_the_disk(obj: object, handle, *args, **kwargs) -> None:
        if isinstance(obj, dict) and "state_dict" in obj:
            handle.write(b"x" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_the_disk)
    argv = trainer_args("fit", "--trainer.max_steps", "2")
    monkeypatch.setattr(sys, "argv", ["faceinpaint", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert re.match(
        r"faceinpaint fit: error: no space left for \S+\.ckpt: it needs more than 100 bytes",
        errors[0],
    )
    assert list((inputs / "checkpoints").iterdir()) == []  # no .tmp, no partial file


def test_a_full_disk_while_eval_writes_its_tables_is_one_line_and_exit_2(
    inputs: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faceinpaint.io.os, "fdopen", lambda fd, mode: FillsUp(fd, limit=10))
    argv = ["eval", "--config", EVAL, "--baselines", "mean", "--limit", "4", "--out", "out"]
    monkeypatch.setattr(sys, "argv", ["faceinpaint", *argv, "--data.cache_dir", "cache"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert re.search(
        r"faceinpaint eval: error: no space left for out/\S+: it needs more than \d+ bytes",
        errors[0],
    )
    assert list((inputs / "out").iterdir()) == []  # no partial table, no temporary file
