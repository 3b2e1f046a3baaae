"""`faceinpaint demo`: both smoke models trained and benchmarked on the thesis masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from faceinpaint.demo import resolve_config
from faceinpaint.eval.protocols import load_protocol, task_mask_hash

REPO = Path(__file__).resolve().parents[1]


def test_configs_resolve_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config("configs/eval/smoke.yaml") == REPO / "configs/eval/smoke.yaml"
    with pytest.raises(FileNotFoundError, match="config 'configs/none.yaml' not found"):
        resolve_config("configs/none.yaml")


@pytest.mark.slow
def test_demo_writes_the_thesis_table_and_grids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceinpaint.cli import cli_main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    rows = cli_main(
        [
            "demo",
            "--out",
            str(out),
            "--vaegan_config",
            "configs/vaegan/smoke.yaml",
            "--dcgan_config",
            "configs/dcgan/smoke.yaml",
        ]
    )
    masks = ["center", "left", "right", "random_pixels"]
    methods = ["vaegan", "dcgan", "mean", "harmonic", "telea", "ns", "nn"]
    assert [(r["mask"], r["method"]) for r in rows] == [(m, k) for m in masks for k in methods]
    thesis = {t.mask: t for t in load_protocol(REPO / "configs/eval/thesis.yaml").tasks()}
    for row in rows:
        assert row["protocol"] == "thesis" and row["n"] == 64
        assert row["mask_hash"] == task_mask_hash(thesis[row["mask"]], 64)
    assert [
        json.loads(line)["method"] for line in (out / "results.jsonl").read_text().splitlines()
    ] == [r["method"] for r in rows]
    table = (out / "thesis.md").read_text()
    assert sum(line.startswith("| ") and "±" in line for line in table.splitlines()) == 28
    for mask in masks:
        with Image.open(out / f"thesis-{mask}.png") as grid:
            assert grid.size[1] == 9 * 66 + 2  # original, masked, 7 methods
    assert len(list((out / "runs").rglob("*.ckpt"))) >= 2
