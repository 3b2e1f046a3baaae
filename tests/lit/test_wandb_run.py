"""Training runs on a wandb dashboard (offline): visible images, one run across resumes, and
the group / job type / summaries that link training to eval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import finish_wandb_runs
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.eval.wandb_files import read_records, run_files

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


def fit_under_wandb(tmp_path: Path, config: str, *extra: str) -> Any:
    """A smoke fit of ``config`` logging to an offline wandb run under ``tmp_path / "runs"``,
    finished as the process that ran it would be at exit."""
    cli = cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / config),
            "--data.cache_dir",
            str(tmp_path / "cache"),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "lightning.pytorch.loggers.WandbLogger",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
            "--trainer.logger.init_args.project",
            "faceinpaint-test",
            "--trainer.logger.init_args.name",
            "smoke",
            *extra,
        ]
    )
    finish_wandb_runs(tmp_path / "runs")
    return cli


SHORT = {
    "vaegan/smoke.yaml": ("--model.stage_boundaries", "[1, 2, 3]"),  # 11 batches, 1 validation
    "dcgan/smoke.yaml": ("--trainer.max_epochs", "1"),
}


def logged_images(tmp_path: Path) -> dict[str, list[Path]]:
    """Tag (``val/images``) -> the PNGs (``<tag>_<step>_<hash>.png``) the offline run holds."""
    (media,) = (tmp_path / "runs").glob("wandb/offline-run-*/files/media/images")
    images: dict[str, list[Path]] = {}
    for path in sorted(media.rglob("*.png")):
        tag = (path.relative_to(media).parent / path.name.rsplit("_", 2)[0]).as_posix()
        images.setdefault(tag, []).append(path)
    return images


@pytest.mark.parametrize(
    ("config", "tags"),
    [("vaegan/smoke.yaml", ["train/images", "val/images"]), ("dcgan/smoke.yaml", ["samples"])],
)
def test_logged_images_are_visible(
    offline_wandb: Path, config: str, tags: list[str], one_cpu_thread: None
) -> None:
    """wandb casts float pixels to uint8 unscaled: grids in [0, 1] would be black."""
    fit_under_wandb(offline_wandb, config, *SHORT[config])
    images = logged_images(offline_wandb)
    assert sorted(images) == tags
    for path in (path for paths in images.values() for path in paths):
        assert np.asarray(Image.open(path)).mean() > 20, path


def offline_run_ids(tmp_path: Path) -> list[str]:
    """The run id that each offline run folder's run record holds. Not parsed from the folder's
    name: a resume that starts within the same second as its run gets
    ``offline-run-<date>_<time>-<id>-1``."""
    return [
        next(
            record.run.run_id
            for record in read_records(path)
            if record.WhichOneof("record_type") == "run"
        )
        for path in run_files(tmp_path / "runs")
    ]


def test_a_resumed_fit_continues_its_wandb_run(offline_wandb: Path, one_cpu_thread: None) -> None:
    first = fit_under_wandb(offline_wandb, "dcgan/smoke.yaml", "--trainer.max_epochs", "1")
    run = first.trainer.logger.experiment
    (run_file,) = run_files(offline_wandb / "runs")
    records = [record for record in read_records(run_file)]
    (started,) = [record.run for record in records if record.WhichOneof("record_type") == "run"]
    assert (started.run_group, started.job_type) == ("smoke", "train")
    summaries = {
        record.metric.glob_name: record.metric.summary
        for record in records
        if record.WhichOneof("record_type") == "metric"
    }
    assert summaries["val/psnr*"].max and summaries["val/ssim*"].max
    last = offline_wandb / "runs" / "smoke" / "last.ckpt"
    resumed = fit_under_wandb(
        offline_wandb, "dcgan/smoke.yaml", "--trainer.max_epochs", "2", "--ckpt_path", str(last)
    )
    assert resumed.trainer.current_epoch == 2
    assert resumed.trainer.logger.experiment.id == run.id
    assert resumed.trainer.logger.experiment.group == "smoke"
    assert offline_run_ids(offline_wandb) == [run.id, run.id]
