"""The ``faceinpaint`` command: every config parses, extra subcommands run, bad commands fail clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from PIL import Image

from faceinpaint.cli import cli_main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def test_there_are_configs() -> None:
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_print_config_for_every_config(
    config: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(REPO)
    sections = yaml.safe_load(config.read_text())
    if config.parent.name == "ddp":
        # overlays: stacked on a method config, as their headers show
        base = REPO / "configs" / ("dcgan" if "dcgan" in config.name else "vaegan") / "smoke.yaml"
        args = ["fit", "--config", str(base), "--config", str(config)]
    elif config.parent.name == "eval":
        # configs/eval/demo.yaml is the demo's config too: its models: section is the demo's
        eval_only = tmp_path / config.name
        eval_only.write_text(yaml.safe_dump({k: v for k, v in sections.items() if k != "models"}))
        args = ["eval", "--config", str(eval_only)]
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


def _fit_smoke(tmp_path: Path, *extra: str) -> Any:
    return cli_main(
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
    _fit_smoke(tmp_path, *csv, "--model.weights.kl", "0.5")
    first = yaml.safe_load((tmp_path / "runs/vaegan-smoke/version_0/config.yaml").read_text())
    second = yaml.safe_load((tmp_path / "runs/vaegan-smoke/version_1/config.yaml").read_text())
    assert first["model"]["init_args"]["weights"]["kl"] == 0.001
    assert second["model"]["init_args"]["weights"]["kl"] == 0.5


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
    cli = _fit_smoke(tmp_path, *wandb_logger)
    configs = list((tmp_path / "runs").rglob("offline-run-*/files/config.yaml"))
    assert len(configs) == 1
    assert not (tmp_path / "runs" / "config.yaml").exists()
    run = cli.trainer.logger.experiment
    # the resolved config, trainer settings included, is the run's wandb.config
    assert run.config["trainer"]["max_epochs"] == cli.trainer.max_epochs
    assert run.config["model"]["init_args"]["stage_boundaries"] == [1, 2, 3]
    # the checkpoint remembers its wandb run, for `faceinpaint eval` to group with it
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["wandb_run"]["id"] == run.id
    assert checkpoint["wandb_run"]["project"] == "faceinpaint-test"


def test_help_lists_every_command_with_one_line(capsys: pytest.CaptureFixture) -> None:
    from faceinpaint.cli import EXTRA_COMMANDS, TRAINER_COMMANDS

    cli_main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    for command in [*TRAINER_COMMANDS, *(" ".join(words) for words in EXTRA_COMMANDS)]:
        (line,) = [line for line in lines if line.strip().startswith(command + "  ")]
        assert len(line.split(command, 1)[1].strip()) > 10, line
    assert {"plot", "inpaint", "bench", "demo", "eval"} <= {
        line.split()[0] for line in lines if line.startswith("  ")
    }


def _parsed(*args: str) -> Any:
    """The CLI's model and DataModule for ``args``, instantiated but not run."""
    from lightning.pytorch import LightningModule

    from faceinpaint.commands.train import FaceInpaintCLI
    from faceinpaint.data.datamodule import FaceDataModule

    return FaceInpaintCLI(
        LightningModule, FaceDataModule, subclass_mode_model=True, args=list(args), run=False,
        save_config_callback=None,
    )  # fmt: skip


@pytest.mark.parametrize("config", ["dcgan/smoke.yaml", "vaegan/smoke.yaml"])
def test_data_image_size_is_the_models(config: str) -> None:
    cli = _parsed("--config", str(REPO / "configs" / config), "--data.image_size", "32")
    assert cli.datamodule.image_size == 32
    assert cli.model.hparams.image_size == 32


def test_landmark_model_without_image_size_still_parses() -> None:
    cli = _parsed("--config", str(REPO / "configs/landmarks/smoke.yaml"), "--data.image_size", "32")
    assert cli.datamodule.image_size == 32


def test_a_model_image_size_other_than_the_datas_is_refused_not_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    smoke = str(REPO / "configs/dcgan/smoke.yaml")  # model and data both 64
    with pytest.raises(SystemExit) as refused:
        cli_main(["fit", "--config", smoke, "--model.init_args.image_size", "32"])  # fmt: skip
    assert refused.value.code == 2
    assert (
        "faceinpaint fit: error: --model.init_args.image_size gives the model image_size 32 "
        "but the data 64" in capsys.readouterr().err
    )
    config = yaml.safe_load((REPO / "configs/dcgan/smoke.yaml").read_text())
    config["data"]["image_size"] = 32  # edited in data: only
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as refused:
        cli_main(["fit", "--config", str(path)])
    assert refused.value.code == 2
    assert f"{path} gives the model image_size 64 but the data 32" in capsys.readouterr().err


@pytest.mark.parametrize(
    "config",
    [
        "dcgan/celeba64.yaml",
        "vaegan/paper.yaml",
        "vaegan/paper-aligned.yaml",
        "data/celeba-64.yaml",
        "data/celeba-wild-128.yaml",
    ],
)
def test_celeba_configs_need_a_celeba_root(config: str, tmp_path: Path) -> None:
    command = "prepare" if config.startswith("data/") else "fit"
    args = [command, "--config", str(REPO / "configs" / config), "--data.cache_dir", str(tmp_path)]
    with pytest.raises(
        SystemExit, match=r"needs CelebA .*CelebA\('/data', split='all', download=True\)"
    ):
        cli_main([*args, "--data.root", str(tmp_path)])
    if config == "dcgan/celeba64.yaml":  # root: null in the file
        with pytest.raises(SystemExit, match="data.root is not set"):
            cli_main(args)


def test_celeba_wild_configs_say_where_the_in_the_wild_images_come_from(tmp_path: Path) -> None:
    """torchvision downloads img_align_celeba/ and list_bbox_celeba.txt but never img_celeba/: the
    error for the in-the-wild layout names what is missing and where it comes from, on one line."""
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)  # what torchvision's download leaves
    (root / "list_bbox_celeba.txt").write_text("1\nimage_id x_1 y_1 width height\n")
    args = ["fit", "--config", str(REPO / "configs/vaegan/paper.yaml"), "--data.root", str(root)]
    with pytest.raises(SystemExit) as refused:
        cli_main(args)
    message = str(refused.value.code)
    assert "\n" not in message
    assert "holds no img_celeba/." in message
    assert "img_celeba.7z.001" in message and "mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in message
    (root / "list_bbox_celeba.txt").unlink()
    (root / "img_celeba").mkdir()
    with pytest.raises(SystemExit, match=r"holds no list_bbox_celeba.txt\. "):
        cli_main(args)


def test_extra_commands_print_the_projects_info_lines(tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    faces.mkdir()
    for number in range(1, 5):
        Image.new("RGB", (40, 48), (100, 120, 140)).save(faces / f"{number:06d}.png")
    result = subprocess.run(
        [sys.executable, "-m", "faceinpaint", "prepare", "--data.root", str(faces),
         "--data.splits", "{train: all}", "--data.image_size", "16",
         "--data.cache_dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "faceinpaint.data.datamodule: building cache" in result.stderr


def test_slurm_script_requeues_and_matches_its_overlay(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = (REPO / "configs/ddp/slurm-2x4.sbatch").read_text()
    directives = dict(
        line.removeprefix("#SBATCH --").split("=", 1)
        for line in script.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )
    # SIGTERM to every task (no B:) before the limit: faceinpaint saves, the script requeues
    assert directives["signal"].startswith("TERM@")
    overlay = yaml.safe_load((REPO / "configs/ddp/slurm-2x4.yaml").read_text())["trainer"]
    assert int(directives["ntasks-per-node"]) == overlay["devices"]
    assert int(directives["gpus-per-node"]) == overlay["devices"]
    assert int(directives["nodes"]) == overlay["num_nodes"]
    command = script.split("srun ", 1)[1].replace("\\\n", " ").split()
    assert command[:2] == ["faceinpaint", "fit"]
    configs = [command[i + 1] for i, word in enumerate(command) if word == "--config"]
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", *(arg for c in configs for arg in ("--config", c)), "--print_config"])
    assert exit_info.value.code in (0, None)
    assert yaml.safe_load(capsys.readouterr().out)["trainer"]["num_nodes"] == 2


def test_fit_offers_no_optimizer_flags(capsys: pytest.CaptureFixture) -> None:
    """Every module builds its own optimizers; LightningCLI's --optimizer would crash the GANs."""
    with pytest.raises(SystemExit):
        cli_main(["fit", "--help"])
    text = capsys.readouterr().out
    assert "--trainer.max_steps" in text
    assert "--optimizer" not in text and "--lr_scheduler" not in text


def test_runs_without_a_logger_leave_no_config_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No logger, no run folder: a second such run in the same folder must not find the
    first one's config.yaml there (it did, in the working folder, and stopped)."""
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        _fit_smoke(tmp_path, "--trainer.logger", "false")
    assert not list(tmp_path.rglob("config.yaml"))


def test_a_group_of_commands_lists_its_subcommands(capsys: pytest.CaptureFixture) -> None:
    cli_main(["landmarks", "--help"])
    out = capsys.readouterr().out
    assert "usage: faceinpaint landmarks SUBCOMMAND" in out
    assert "  landmarks annotate  " in out
    with pytest.raises(SystemExit, match="unknown command 'landmarks train'.*landmarks annotate"):
        cli_main(["landmarks", "train"])


@pytest.mark.parametrize("native_bf16", [True, False])
def test_bf16_on_a_cpu_without_native_bf16_is_one_warning_line(
    native_bf16: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("faceinpaint.commands.train.cpu_has_bf16", lambda: native_bf16)
    smoke = str(REPO / "configs/dcgan/smoke.yaml")
    for precision in ("bf16-mixed", "32-true"):
        _parsed("--config", smoke, "--trainer.precision", precision, "--trainer.logger", "false")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "bf16" in line]
    expected = "faceinpaint: warning: trainer.precision bf16-mixed on a CPU without native bf16"
    assert [line.startswith(expected) for line in warnings] == ([] if native_bf16 else [True])
