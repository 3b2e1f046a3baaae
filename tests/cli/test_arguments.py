"""Bad arguments to a training command (constructor checks, types, unknown options) end in one
line naming the value, exit status 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faceinpaint.cli import cli_main

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "vaegan" / "smoke.yaml"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            "--model.init_args.local_size=-8",
            "image_size and local_size must be positive, got 64, -8",
        ),
        ("--model.init_args.image_size=32", "gives the model image_size 32 but the data 64"),
        ("--model.init_args.stage_boundaries=[8,4,12]", "non-decreasing .* got \\(8, 4, 12\\)"),
        ("--data.image_size=-64", "image_size .*must be .*, got -64"),  # the model sees it first
        ("--data.train_mask.max_side=-0.5", "max_side must lie in \\(0, 1\\], got -0.5"),
        (
            "--model.init_args.latent_dim=abc",
            "latent_dim.*Expected a <class 'int'>. Got value: abc",
        ),
        ("--trainer.max_stepz=3", "unrecognized arguments: --trainer.max_stepz=3"),
    ],
)
def test_a_bad_constructor_argument_is_one_line_and_exit_2(
    argument: str, message: str, capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(SMOKE), argument])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("faceinpaint fit: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(message, lines[0]), lines[0]
