"""The eval table's method column names the checkpoint without looking like another path."""

from __future__ import annotations

import pytest

from faceinpaint.eval.report import method_label


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
