"""Plot columns of Lightning CSVLogger ``metrics.csv`` files against the step (learning curves),
one panel per column, one line per file.

    python scripts/plot_metrics.py runs/vaegan-celeba-half-cpu-long/version_0/metrics.csv \
        --columns val/psnr_hole val/ssim_hole --out docs/figures/vaegan-learning-curve.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--columns", nargs="+", required=True)
    parser.add_argument("--labels", nargs="*", default=None, help="one per file")
    parser.add_argument("--xlabel", default="step")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    labels = args.labels or args.files
    fig, axes = plt.subplots(1, len(args.columns), figsize=(4.2 * len(args.columns), 3.4))
    axes = axes if len(args.columns) > 1 else [axes]
    for path, label in zip(args.files, labels, strict=True):
        rows = list(csv.DictReader(Path(path).open()))
        for ax, column in zip(axes, args.columns, strict=True):
            points = [(int(r["step"]) + 1, float(r[column])) for r in rows if r.get(column)]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
            ax.set_title(column)
            ax.set_xlabel(args.xlabel)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
