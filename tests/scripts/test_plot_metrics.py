"""scripts/plot_metrics.py: a resumed run's files joined, values placed at generator updates."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "plot_metrics.py"


def _module():
    spec = importlib.util.spec_from_file_location("plot_metrics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("step,train/generator_updates,val/psnr_hole\n" + "\n".join(rows) + "\n")
    return path


def test_a_resumed_run_replaces_the_rows_from_its_first_step(tmp_path):
    plot = _module()
    first = _csv(tmp_path / "a.csv", ["24,25,", "149,,13.5", "299,,15.6", "304,,16.0"])
    later = _csv(tmp_path / "b.csv", ["300,,", "324,325,", "449,,16.5"])
    rows = plot.read_run(f"{first},{later}")
    assert [r["step"] for r in rows] == ["24", "149", "299", "300", "324", "449"]
    assert plot.points(rows, "val/psnr_hole", "step") == [(150, 13.5), (300, 15.6), (450, 16.5)]
    # generator updates interpolated between the training rows around each value's step
    # (one update per batch here), extrapolated after the last one
    assert plot.points(rows, "val/psnr_hole", "train/generator_updates") == [
        (150.0, 13.5),
        (300.0, 15.6),
        (450.0, 16.5),
    ]


def test_a_value_before_any_training_row_is_an_error(tmp_path):
    plot = _module()
    rows = plot.read_run(str(_csv(tmp_path / "a.csv", ["9,,12.0", "24,25,"])))
    with pytest.raises(
        ValueError, match="no row with 'train/generator_updates' at or before step 9"
    ):
        plot.points(rows, "val/psnr_hole", "train/generator_updates")


def test_the_plot_is_written_with_a_reference_line(tmp_path):
    run = _csv(tmp_path / "a.csv", ["24,25,", "149,,13.5", "299,300,15.6"])
    out = tmp_path / "curve.png"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--columns", "val/psnr_hole", "--labels", "kl",
         "--x", "train/generator_updates", "--reference", "val/psnr_hole", "harmonic", "17.7",
         "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 1000
