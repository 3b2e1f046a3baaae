"""Plots: the scalars they read back, and the PNGs they write."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import finish_wandb_runs
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.eval.plots import (
    plot_eval_bars,
    plot_search_history,
    read_run_scalars,
)

STEPS = {"train/loss": {0: 3.0, 10: 2.0, 20: 1.5}, "val/psnr": {10: 18.0, 20: 19.5}}


def _log(logger: CSVLogger | TensorBoardLogger | WandbLogger, steps=(0, 10, 20)) -> None:
    for step in steps:
        values = {name: series[step] for name, series in STEPS.items() if step in series}
        logger.log_metrics(values, step=step)
    logger.save()
    logger.finalize("success")
    if isinstance(logger, WandbLogger):
        finish_wandb_runs(Path(logger.save_dir))


def test_a_wandb_run_is_read_from_its_files_and_found_by_its_checkpoint_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WandbLogger(save_dir=runs, name=N) run keeps checkpoints in runs/N and its files in
    runs/wandb/offline-run-*; a resumed run (same id, same name) adds a second folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    runs = tmp_path / "runs"
    (runs / "run").mkdir(parents=True)
    _log(WandbLogger(save_dir=str(runs), name="run", id="abc123", project="test"), (0, 10))
    _log(WandbLogger(save_dir=str(runs), name="run", id="abc123", project="test", resume="allow"), (20,))  # fmt: skip
    _log(WandbLogger(save_dir=str(runs), name="other", project="test"), (0,))
    (first, *_) = sorted((runs / "wandb").glob("offline-run-*abc123"))
    assert read_run_scalars(first)["val/psnr"] == ([10], [18.0])
    series = read_run_scalars(runs / "run")
    for name, expected in STEPS.items():
        steps, values = series[name]
        assert dict(zip(steps, values, strict=True)) == pytest.approx(expected)


@pytest.mark.parametrize("logger_class", [CSVLogger, TensorBoardLogger])
def test_run_scalars_are_what_the_logger_wrote(tmp_path: Path, logger_class: type) -> None:
    _log(logger_class(save_dir=str(tmp_path), name="run"))
    series = read_run_scalars(tmp_path / "run")
    for name, expected in STEPS.items():
        steps, values = series[name]
        assert dict(zip(steps, values, strict=True)) == pytest.approx(expected)


def test_plot_command_writes_curves_beside_the_logs(tmp_path: Path) -> None:
    _log(CSVLogger(save_dir=str(tmp_path), name="run"))
    path = cli_main(["plot", str(tmp_path / "run")])
    assert path == tmp_path / "run" / "curves.png"
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 150


def test_a_folder_without_logs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics.csv, TensorBoard .* or a wandb run"):
        read_run_scalars(tmp_path)
    with pytest.raises(NotADirectoryError, match="does not exist"):
        read_run_scalars(tmp_path / "missing")


def test_search_history_plot_draws_each_faces_lowest_candidate_loss() -> None:
    history = torch.arange(24, 0, -1, dtype=torch.float32).view(4, 2, 3)  # (K=4, B=2, N=3)
    figure = plot_search_history(history, "search")
    lines = figure.axes[0].get_lines()
    lowest = history.amin(dim=2)  # (K, B)
    for face in range(2):
        assert list(lines[face].get_ydata()) == lowest[:, face].tolist()
    assert list(lines[2].get_ydata()) == lowest.median(dim=1).values.tolist()


def test_eval_bars_one_panel_per_metric_and_mask() -> None:
    def row(mask: str, method: str, mean: float) -> dict:
        stat = {"mean": mean, "ci95": 0.1, "max": mean + 1}
        return {"mask": mask, "method": method, "metrics": {"psnr_hole": stat, "ssim_hole": stat}}

    rows = [row("center", "mean", 13.0), row("center", "harmonic", 17.0), row("left", "mean", 12.0)]
    figure = plot_eval_bars(rows, "thesis")
    assert len(figure.axes) == 4  # (hole PSNR, hole SSIM) x (center, left)
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert heights == [13.0, 17.0]
