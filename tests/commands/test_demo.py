"""`faceinpaint demo`: the shipped weights, the verdict lines, and the retraining command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from faceinpaint.commands.demo import ASSETS, demo_models, resolve_config, verdicts
from faceinpaint.device import native_bf16
from faceinpaint.eval.protocols import load_protocol, task_mask_hash
from faceinpaint.lit.loading import read_weights
from faceinpaint.ops.fills import FILLS_WITHOUT_BANK

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "configs/eval/demo.yaml").read_text())
WEIGHTS = [model.weights for model in demo_models(DEMO)]


def test_configs_resolve_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config("configs/eval/demo.yaml") == REPO / "configs/eval/demo.yaml"
    with pytest.raises(FileNotFoundError, match="config 'configs/none.yaml' not found"):
        resolve_config("configs/none.yaml")


def test_shipped_weights_are_small_fp16_safetensors_that_load() -> None:
    from faceinpaint.lit.loading import load_weights

    paths = [ASSETS / name for name in WEIGHTS]
    assert sorted(p.name for p in ASSETS.iterdir()) == sorted(WEIGHTS)  # none unlisted
    assert sum(path.stat().st_size for path in paths) <= 12 * 2**20
    classes = set()
    for path in paths:
        assert path.read_bytes()[:2] != b"PK", f"{path} is a zip (torch.save) file"
        class_path, _, state = read_weights(path)
        classes.add(class_path.rsplit(".", 1)[1])
        with open(path, "rb") as handle:  # the header names each tensor's stored dtype
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        stored = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
        assert stored <= {"F16", "I64"}, f"{path}: {stored}"
        assert isinstance(load_weights(path), torch.nn.Module)
    assert {"VAEGANModule", "DCGANModule", "LatentEncoder"} <= classes


def _row(mask: str, method: str, psnr: float, ssim: float, ci: float = 0.0) -> dict:
    return {
        "mask": mask,
        "method": method,
        "metrics": {
            "psnr_hole": {"mean": psnr, "ci95": ci},
            "ssim_hole": {"mean": ssim, "ci95": ci / 100},
        },
    }


def test_verdicts_compare_with_the_best_classical_fill_per_metric() -> None:
    rows = [
        _row("center", "vaegan", 20.0, 0.50),
        _row("center", "dcgan+encoder", 25.0, 0.30),
        _row("center", "harmonic", 21.0, 0.20),
        _row("center", "telea", 19.0, 0.40),
    ]
    lines, behind = verdicts(rows, ("harmonic", "telea"))
    assert len(lines) == 2 and behind == lines
    assert lines[0].startswith("center: vaegan") and "NOT ahead on both" in lines[0]
    assert "21.00 dB (harmonic), 0.400 (telea)" in lines[0]
    assert lines[1].startswith("center: dcgan+encoder") and "NOT ahead on both" in lines[1]
    rows[1]["metrics"]["ssim_hole"]["mean"] = 0.45
    lines, behind = verdicts(rows, ("harmonic", "telea"))
    assert lines[1].endswith(": ahead on both") and behind == [lines[0]]


def test_verdicts_count_a_lead_inside_the_intervals_as_not_ahead() -> None:
    """25 +- 2 dB against 21 +- 2.5 dB overlaps; 25 +- 1.5 against 21 +- 2 does not."""
    rows = [_row("left", "vaegan", 25.0, 0.60, ci=2.0), _row("left", "mean", 21.0, 0.40, ci=2.5)]
    assert verdicts(rows, ("mean",))[1] != []
    rows = [_row("left", "vaegan", 25.0, 0.60, ci=1.5), _row("left", "mean", 21.0, 0.40, ci=2.0)]
    assert verdicts(rows, ("mean",))[1] == []


def test_the_demo_exits_non_zero_when_a_learned_method_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI's quality gate: `make demo` fails when a shipped method falls behind."""
    import faceinpaint.eval.runner as runner
    from faceinpaint.commands import demo as demo_command

    rows = [_row("center", "vaegan", 15.0, 0.30, ci=0.5), _row("center", "mean", 16.0, 0.3, ci=0.5)]
    monkeypatch.setattr(runner, "evaluate", lambda **kwargs: rows)
    with pytest.raises(SystemExit, match="1 learned result"):
        demo_command.demo(out=str(tmp_path), limit=2)
    assert demo_command.demo(out=str(tmp_path), limit=2, require_ahead=False) == rows


@pytest.mark.slow
def test_demo_train_retrains_every_model_and_evaluates_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`faceinpaint demo --train true` at tiny size: the documented retraining path."""
    from faceinpaint.cli import cli_main

    monkeypatch.chdir(tmp_path)
    out, assets = tmp_path / "demo", tmp_path / "assets"
    config = DEMO | {"models": [dict(entry) for entry in DEMO["models"]]}
    for entry in config["models"]:  # each model's smoke config, the search 2 steps long
        entry["config"] = str(REPO / entry["config"].replace("/demo.yaml", "/smoke.yaml"))
        if "iterations" in entry.get("overrides", {}):
            entry["overrides"] = entry["overrides"] | {"iterations": 2}
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(config))
    rows = cli_main(
        [
            "demo",
            "--out",
            str(out),
            "--train",
            "true",
            "--assets",
            str(assets),
            "--protocol_config",
            str(tmp_path / "demo.yaml"),
            "--limit",
            "4",
            "--threads",
            "1",
            "--require_ahead",
            "false",  # a few steps of training are not expected to beat the classical fills
        ]
    )
    assert sorted(p.name for p in assets.iterdir()) == sorted(WEIGHTS)
    masks = ["center", "left", "right"]
    learned = [m.name for m in demo_models(DEMO) if m.evaluate]
    # the demo's search runs precision auto: bf16 where the CPU has it natively
    search = "dcgan+encoder" + ("+bf16" if native_bf16(torch.device("cpu")) else "")
    methods = [search if n == "dcgan" else n for n in learned]
    methods += list(FILLS_WITHOUT_BANK)
    assert [(r["mask"], r["method"]) for r in rows] == [(m, k) for m in masks for k in methods]
    thesis = {t.mask: t for t in load_protocol(REPO / "configs/eval/thesis.yaml").tasks()}
    for row in rows:
        assert row["protocol"] == "thesis" and row["n"] == 4
        assert row["mask_hash"] == task_mask_hash(thesis[row["mask"]], 4)
    for mask in masks:
        with Image.open(out / f"thesis-{mask}.png") as grid:
            assert grid.size[1] == (2 + len(methods)) * 66 + 2  # original, masked, each method
    assert len(list((out / "runs").rglob("*.ckpt"))) >= len(WEIGHTS)
