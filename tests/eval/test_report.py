"""The eval table's method column names the checkpoint without looking like another path; grid labels."""

from __future__ import annotations

import pytest
import torch

from faceinpaint.eval.report import grid_image, method_label


@pytest.mark.parametrize(
    ("checkpoint", "shown"),
    [
        (None, "mean"),
        ("runs/vaegan-smoke/last.ckpt", "mean (`runs/vaegan-smoke/last.ckpt`)"),
        ("runs/a/checkpoints/last.ckpt", "mean (`runs/a/last.ckpt`)"),
        ("outputs/x/runs/a/last.ckpt", "mean (`…/runs/a/last.ckpt`)"),
        ("/tmp/pytest-1/g.safetensors", "mean (`/tmp/pytest-1/g.safetensors`)"),
        ("/tmp/pytest-1/run/v0/g.safetensors", "mean (`…/run/v0/g.safetensors`)"),
    ],
)
def test_method_label_shows_where_parts_were_left_out(checkpoint: str | None, shown: str) -> None:
    assert method_label({"method": "mean", "checkpoint": checkpoint}) == shown


def test_method_label_flags_training_faces() -> None:
    row = {"method": "vaegan", "checkpoint": "w.ckpt", "train_overlap": 3, "n": 8}
    assert method_label(row) == "vaegan (`w.ckpt`) **trained on 3/8**"


def _measured(mask: str, method: str, base: float) -> dict:
    stats = {
        name: {"mean": base + offset, "ci95": 0.1, "max": base + 1}
        for name, offset in (
            ("psnr", 0.0), ("ssim", -base + 0.9), ("psnr_raw", -2.0), ("ssim_raw", -base + 0.7),
            ("psnr_hole", -6.0), ("ssim_hole", -base + 0.4),
        )
    }  # fmt: skip
    reported = [
        {"source": "paper", "method": "theirs", "mask": "center", "psnr": 21.528, "ssim": 0.665,
         "statistic": "mean", "definition": "not stated"},
    ]  # fmt: skip
    return {
        "protocol": "p", "mask": mask, "method": method, "n": 5, "metrics": stats,
        "config": {"protocol": {"reported": reported}},
    }  # fmt: skip


def test_comparison_table_quotes_the_papers_above_the_measured_rows() -> None:
    from faceinpaint.eval.report import comparison_table

    table = comparison_table([_measured("center", "vaegan", 25.0), _measured("left", "mean", 20.0)])
    lines = [line for line in table.splitlines() if line.startswith("| center")]
    assert len(lines) == 2, "the quoted row, then this run's row of the same mask"
    assert lines[0].startswith("| center | *reported* theirs (mean; paper;")
    assert "| 21.528 / 0.665 | | | |" in lines[0]
    assert lines[1] == (
        "| center | *measured* vaegan (mean of n = 5) | | 25.00 / 0.900 | 23.00 / 0.700 | "
        "19.00 / 0.400 |"
    )
    assert "| left" not in table, "masks the papers quote nothing for stay in the main table"
    assert comparison_table([_measured("left", "mean", 20.0)]) == "", "no quoted mask evaluated"
    no_quotes = _measured("center", "vaegan", 25.0)
    no_quotes["config"]["protocol"] = {}
    assert comparison_table([no_quotes]) == ""


def test_grid_labels_are_never_cut():
    images = torch.full((2, 3, 32, 32), 0.5)
    tiles = 2 * (32 + 2) + 2
    short = grid_image([("mean", images)])
    long_label = "dcgan+encoder+bf16+poisson"  # 26 characters: cut at 16 by a 96 px margin
    long = grid_image([("mean", images), (long_label, images)])
    assert short.shape[1] == 96 + tiles
    assert long.shape[1] == 6 * len(long_label) + 8 + tiles
    # the whole label is drawn: its text runs past where 16 characters (a 96 px margin) ended
    text = (long[34:, : long.shape[1] - tiles] < 128).any(axis=(0, 2))
    assert text.nonzero()[0].max() > 120
