"""No checkpoint runs code: every path that opens a pickle refuses one that would, in one line.

A crafted checkpoint whose pickle creates a file when unpickled in full is handed to every place
that loads a checkpoint (training commands' ``--ckpt_path``, every ``*_checkpoint`` setting,
``vgg_weights``, eval, inpaint, bench, the weights export): the file must never appear, and the
command must end with the trust note on one line, exit status 2.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from faceinpaint.cli import main
from faceinpaint.safe_load import TRUST_NOTE

REPO = Path(__file__).resolve().parents[2]
VAEGAN = str(REPO / "configs" / "vaegan" / "smoke.yaml")
DCGAN = str(REPO / "configs" / "dcgan" / "smoke.yaml")
ENCODER = str(REPO / "configs" / "encoder" / "smoke.yaml")
EVAL = str(REPO / "configs" / "eval" / "smoke.yaml")
SHIPPED_DCGAN = str(REPO / "faceinpaint" / "assets" / "dcgan-demo.safetensors")
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
REFUSAL = "holds objects other than tensors and plain values"


class CreatesFile:
    """Unpickled in full, it creates ``marker``: what a hostile checkpoint's code would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


class RunsShell:
    """Unpickled in full, it runs ``touch marker`` through ``os.system``, as the issue's crafted
    checkpoint did (torch reports modules it blocks outright, like ``posix``, in other words)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


PAYLOADS = {"python": CreatesFile, "shell": RunsShell}


def hostile_checkpoint(path: Path, marker: Path, payload: type = CreatesFile) -> Path:
    """A file shaped like a Lightning checkpoint with the payload beside its state."""
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": payload(marker)}, path)
    return path


@pytest.fixture(params=sorted(PAYLOADS))
def hostile(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "code-ran"
    path = hostile_checkpoint(tmp_path / "hostile.ckpt", marker, PAYLOADS[request.param])
    return {"ckpt": path, "marker": marker}


def test_the_hostile_checkpoint_runs_code_when_unpickled_in_full(hostile) -> None:
    torch.load(hostile["ckpt"], weights_only=False)
    assert hostile["marker"].exists()


# Each command line takes the hostile file as CKPT.
COMMANDS = {
    "fit --ckpt_path": ["fit", "--config", VAEGAN, "--ckpt_path", "CKPT"],
    "validate --ckpt_path": ["validate", "--config", DCGAN, "--ckpt_path", "CKPT"],
    "test --ckpt_path": ["test", "--config", DCGAN, "--ckpt_path", "CKPT"],
    "predict --ckpt_path": ["predict", "--config", DCGAN, "--ckpt_path", "CKPT"],
    "vaegan landmark_checkpoint": [
        "fit", "--config", VAEGAN, "--model.init_args.landmark_checkpoint", "CKPT",
    ],
    "vaegan vgg_weights": ["fit", "--config", VAEGAN, "--model.init_args.vgg_weights", "CKPT"],
    "encoder dcgan_checkpoint": [
        "fit", "--config", ENCODER, "--model.init_args.dcgan_checkpoint", "CKPT",
    ],
    "dcgan encoder_checkpoint": [
        "test", "--config", DCGAN, "--model.init_args.encoder_checkpoint", "CKPT",
        "--trainer.limit_test_batches", "1",
    ],
    "dcgan landmark_checkpoint": [
        "test", "--config", DCGAN, "--model.init_args.search.landmark_weight", "0.1",
        "--model.init_args.landmark_checkpoint", "CKPT", "--trainer.limit_test_batches", "1",
    ],
    "eval --vaegan": ["eval", "--config", EVAL, "--vaegan", "CKPT"],
    "eval --dcgan": ["eval", "--config", EVAL, "--dcgan", "CKPT"],
    "eval --checkpoints": ["eval", "--config", EVAL, "--checkpoints", "[CKPT]"],
    "eval --checkpoints overrides encoder_checkpoint": [
        "eval", "--config", EVAL, "--checkpoints",
        "[{path: " + SHIPPED_DCGAN + ", overrides: {encoder_checkpoint: CKPT}}]",
        "--baselines", "[]", "--limit", "2",
        "--allow_train_overlap", "true",  # the shipped DCGAN records the embedded faces it saw
    ],
    "eval --landmark_checkpoint": ["eval", "--config", EVAL, "--landmark_checkpoint", "CKPT"],
    "inpaint --checkpoint": [
        "inpaint", "--checkpoint", "CKPT", "--image", "photo.png", "--out", "out.png",
        "--box", "0,0,4,4",
    ],
    "bench --quality_dcgan": ["bench", "--only", "[quality]", "--quality_dcgan", "CKPT"],
    "bench --quality_encoder": ["bench", "--only", "[quality]", "--quality_encoder", "CKPT"],
}  # fmt: skip


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_refuses_a_checkpoint_that_would_run_code(
    name: str,
    hostile: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    Image.new("RGB", (32, 32)).save("photo.png")
    args = [arg.replace("CKPT", str(hostile["ckpt"])) for arg in COMMANDS[name]]
    if args[0] in ("fit", "validate", "test", "predict"):
        args += QUIET
    monkeypatch.setattr(sys, "argv", ["faceinpaint", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert not hostile["marker"].exists()
    assert exit_info.value.code == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = re.findall(r"faceinpaint [\w ]+: error: [^\r\n]*", err)  # after a progress bar too
    assert len(errors) == 1, err[-3000:]
    assert REFUSAL in errors[0] and TRUST_NOTE in errors[0]


def test_exporting_weights_refuses_a_checkpoint_that_would_run_code(hostile) -> None:
    from faceinpaint.lit.weights import export_weights

    with pytest.raises(ValueError, match=REFUSAL) as refused:
        export_weights(hostile["ckpt"], Path("exported.safetensors"))
    assert TRUST_NOTE in str(refused.value) and "\n" not in str(refused.value)
    assert not hostile["marker"].exists()
    assert not Path("exported.safetensors").exists()
