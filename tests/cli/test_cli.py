"""The ``faceinpaint`` command: every config parses, extra subcommands run, bad commands fail clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from faceinpaint.cli import cli_main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def test_there_are_configs() -> None:
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_print_config_for_every_config(
    config: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    sections = yaml.safe_load(config.read_text())
    if config.parent.name == "ddp":
        # overlays: stacked on a method config, as their headers show
        base = REPO / "configs" / ("dcgan" if "dcgan" in config.name else "vaegan") / "smoke.yaml"
        args = ["fit", "--config", str(base), "--config", str(config)]
    elif config.parent.name == "eval":
        args = ["eval", "--config", str(config)]
    else:
        args = ["fit" if "model" in sections else "prepare", "--config", str(config)]
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    for section, values in sections.items():
        if section in ("data", "trainer") and isinstance(values, dict):
            for key, value in values.items():
                if not isinstance(value, (dict, list)):
                    assert printed[section][key] == value, (section, key)
    if "model" in sections:
        assert printed["model"]["class_path"] == sections["model"]["class_path"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_checkpoints_keep_the_newest_state(config: Path) -> None:
    """Lightning's own ModelCheckpoint leaves last.ckpt at the best step (faceinpaint.lit.checkpoint)."""
    trainer = yaml.safe_load(config.read_text()).get("trainer") or {}
    for callback in trainer.get("callbacks") or []:
        assert not callback["class_path"].endswith("callbacks.ModelCheckpoint"), callback


def test_unknown_command_names_the_choices() -> None:
    with pytest.raises(SystemExit, match="unknown command 'train'.*fit, validate, test, predict"):
        cli_main(["train"])


def test_prepare_reports_split_sizes(tmp_path: Path) -> None:
    summary = cli_main(
        [
            "prepare",
            "--data.synthetic_size",
            "30",
            "--data.image_size",
            "32",
            "--data.cache_dir",
            str(tmp_path),
        ]
    )
    assert summary["splits"] == {"train": 24, "val": 3, "test": 3}


def test_preview_writes_a_grid_of_every_mask_type(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    cli_main(
        [
            "preview",
            "--config",
            str(REPO / "configs/data/embedded-64.yaml"),
            "--data.synthetic_size",
            "40",
            "--data.cache_dir",
            str(tmp_path),
            "--count",
            "4",
            "--out",
            str(out),
        ]
    )
    with Image.open(out) as grid:
        # 4 faces per row; originals + 8 mask rows; 2 px padding around 64 px tiles
        assert grid.size == (4 * 66 + 2, 9 * 66 + 2)


def test_extra_command_rejects_unknown_option(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        cli_main(["preview", "--no_such_option", "1"])


def test_console_module_entry_point_exits_zero(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "faceinpaint",
            "prepare",
            "--data.synthetic_size",
            "20",
            "--data.image_size",
            "16",
            "--data.cache_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert '"train": 16' in result.stdout


def test_bad_input_to_an_extra_command_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "faceinpaint",
            "prepare",
            "--data.root",
            str(tmp_path / "nowhere"),
            "--data.splits",
            "{train: all}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith("faceinpaint prepare: error: data root")
    )
    assert "Traceback" not in result.stderr


def _fit_smoke(tmp_path: Path, *extra: str) -> None:
    cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs/vaegan/smoke.yaml"),
            "--model.stage_boundaries",
            "[1, 2, 3]",
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.callbacks.init_args.dirpath",
            str(tmp_path / "checkpoints"),
            *extra,
        ]
    )


def test_each_run_saves_its_config_in_its_own_folder(tmp_path: Path) -> None:
    csv = ["--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
    _fit_smoke(tmp_path, *csv)
    _fit_smoke(tmp_path, *csv, "--model.kl_weight", "0.5")
    first = yaml.safe_load((tmp_path / "runs/vaegan-smoke/version_0/config.yaml").read_text())
    second = yaml.safe_load((tmp_path / "runs/vaegan-smoke/version_1/config.yaml").read_text())
    assert first["model"]["init_args"]["kl_weight"] == 0.001
    assert second["model"]["init_args"]["kl_weight"] == 0.5


@pytest.mark.slow
def test_wandb_offline_run_keeps_its_config_in_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    wandb_logger = [
        "--trainer.logger",
        "lightning.pytorch.loggers.WandbLogger",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        "--trainer.logger.init_args.project",
        "faceinpaint-test",
    ]
    _fit_smoke(tmp_path, *wandb_logger)
    configs = list((tmp_path / "runs").rglob("offline-run-*/files/config.yaml"))
    assert len(configs) == 1
    assert not (tmp_path / "runs" / "config.yaml").exists()
