"""Plot columns of Lightning CSVLogger ``metrics.csv`` files against the step (learning curves),
one panel per column, one line per run.

    python scripts/plot_metrics.py runs/vaegan-celeba-half-cpu-long/version_0/metrics.csv \
        --columns val/psnr_hole val/ssim_hole --out docs/figures/vaegan-learning-curve.png

A run continued with ``--ckpt_path`` logs to a new folder: join its files with commas
(``first/metrics.csv,continued/metrics.csv``); rows of a later file replace the earlier file's
from its first step on (Lightning's resume replays nothing, so they do not overlap otherwise).
``--x train/generator_updates`` puts each value at the generator updates interpolated between
the training rows around its step (the VAE-GAN makes one generator update per n_critic batches
in its adversarial stages; exact within a stage). ``--reference COLUMN LABEL VALUE`` draws a horizontal line (e.g. a classical
fill's value on the same validation faces).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_run(paths: str) -> list[dict[str, str]]:
    """The rows of one run: comma-separated metrics.csv files, each later file's rows replacing
    the earlier ones' from its first step on."""
    rows: list[dict[str, str]] = []
    for path in paths.split(","):
        more = list(csv.DictReader(Path(path).open()))
        if more:
            first = int(more[0]["step"])
            rows = [r for r in rows if int(r["step"]) < first] + more
    return rows


def points(rows: list[dict[str, str]], column: str, x: str) -> list[tuple[float, float]]:
    """``(x, value)`` of every row with ``column``; ``x`` is ``step`` (counted from 1) or a
    training column, interpolated linearly between the training rows around the value's step
    (extrapolated from the last two after the last one)."""
    known = [(int(r["step"]), float(r[x])) for r in rows if x != "step" and r.get(x)]
    out = []
    for row in rows:
        if not row.get(column):
            continue
        step = int(row["step"])
        if x == "step":
            out.append((step + 1, float(row[column])))
            continue
        before = [k for k in known if k[0] <= step]
        if not before:
            raise ValueError(f"no row with {x!r} at or before step {step}")
        after = [k for k in known if k[0] > step]
        (s0, v0), upper = before[-1], after[0] if after else None
        if upper is None and len(before) >= 2:
            (s0, v0), upper = before[-2], before[-1]
        if upper is None or upper[0] == s0:
            out.append((v0, float(row[column])))
            continue
        slope = (upper[1] - v0) / (upper[0] - s0)
        out.append((v0 + slope * (step - s0), float(row[column])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="a run's metrics.csv files, comma-separated")
    parser.add_argument("--columns", nargs="+", required=True)
    parser.add_argument("--labels", nargs="*", default=None, help="one per run")
    parser.add_argument("--x", default="step", help="step, or a training column")
    parser.add_argument("--xlabel", default=None)
    parser.add_argument("--title", default=None)
    parser.add_argument(
        "--reference", nargs=3, action="append", default=[], metavar=("COLUMN", "LABEL", "VALUE")
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    labels = args.labels or args.files
    if len(labels) != len(args.files):
        raise ValueError(f"{len(args.files)} runs but {len(labels)} labels")
    unknown = [ref[0] for ref in args.reference if ref[0] not in args.columns]
    if unknown:
        raise ValueError(f"--reference columns {unknown} are not among --columns {args.columns}")
    fig, axes = plt.subplots(1, len(args.columns), figsize=(4.6 * len(args.columns), 3.6))
    axes = axes if len(args.columns) > 1 else [axes]
    for paths, label in zip(args.files, labels, strict=True):
        rows = read_run(paths)
        for ax, column in zip(axes, args.columns, strict=True):
            found = points(rows, column, args.x)
            ax.plot([p[0] for p in found], [p[1] for p in found], marker="o", ms=3, label=label)
    for ax, column in zip(axes, args.columns, strict=True):
        for ref_column, label, value in args.reference:
            if ref_column == column:
                ax.axhline(float(value), color="black", linestyle="-.", linewidth=1, label=label)
        ax.set_title(column)
        ax.set_xlabel(args.xlabel or args.x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if args.title:
        fig.suptitle(args.title, fontsize=9)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
