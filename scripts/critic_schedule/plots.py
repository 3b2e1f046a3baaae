"""Plots of the critic-schedule comparison (docs/RESULTS.md (critic schedule)); needs matplotlib.

    python scripts/critic_schedule/plots.py OLD_RUN_DIR OLD_VAL_JSONL NEW_RUN_DIR NEW_VAL_JSONL OUT_DIR

A run dir is a CSVLogger version folder (metrics.csv with train/elapsed_s, logged by
fidelity_method_wallclock.WallClock); a val JSONL is that callback's per-validation lines.
Writes OUT_DIR/fidelity-method-critic-losses.png and OUT_DIR/fidelity-method-val-hole.png.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _train_rows(run: Path) -> list[dict[str, float]]:
    rows = []
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if v not in ("", None)}
            if "train/elapsed_s" in values:
                rows.append(values)
    return rows


def _smooth(values: list[float], window: int = 9) -> list[float]:
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def main(old_run: str, old_val: str, new_run: str, new_val: str, out: str) -> None:
    runs = {
        "former: 5 critic updates on the generator's batch": (Path(old_run), Path(old_val)),
        "WGAN Alg. 1: a fresh batch per critic update": (Path(new_run), Path(new_val)),
    }
    out_dir = Path(out)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for label, (run, _) in runs.items():
        rows = _train_rows(run)
        for axis, key in zip(axes[:2], ("train/critic_global", "train/critic_local"), strict=True):
            points = [(r["train/elapsed_s"] / 60, r[key]) for r in rows if key in r]
            if points:
                minutes, values = zip(*points, strict=True)
                axis.plot(minutes, _smooth(list(values)), label=label)
        updates = [
            (r["train/elapsed_s"] / 60, r.get("train/generator_updates", r["step"] + 1))
            for r in rows
        ]
        axes[2].plot(*zip(*updates, strict=True), label=label)
    for axis, title in zip(
        axes,
        (
            "global critic loss (moving mean of 9 logs)",
            "local critic loss (moving mean of 9 logs)",
            "generator updates",
        ),
        strict=True,
    ):
        axis.set_title(title)
        axis.set_xlabel("wall-clock minutes")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out_dir / "fidelity-method-critic-losses.png", dpi=100)

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, (_, val) in runs.items():
        lines = [json.loads(line) for line in val.read_text().splitlines()]
        minutes = [row["elapsed_s"] / 60 for row in lines]
        axes[0].plot(minutes, [row["val/psnr_hole"] for row in lines], marker=".", label=label)
        axes[1].plot(minutes, [row["val/ssim_hole"] for row in lines], marker=".", label=label)
    for axis, title in zip(
        axes, ("val hole PSNR (dB), 200 faces", "val hole SSIM, 200 faces"), strict=True
    ):
        axis.set_title(title)
        axis.set_xlabel("wall-clock minutes")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out_dir / "fidelity-method-val-hole.png", dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:])
