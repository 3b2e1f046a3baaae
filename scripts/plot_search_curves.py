"""Plot what ``scripts/search_curves.py`` measured: hole PSNR, hole SSIM and the final total loss of
the latent search against its budget (candidates x iterations), one line per number of
candidates and start (random / encoder), over the faces that every run shares: hole PSNR, hole
SSIM and total loss as paired differences to the random-start reference (the thesis's 64 x
1000) on the same faces, each with its 95 % interval; the best classical fill and the
reference as horizontal lines, a tenth of the reference's budget as a vertical one. Also prints
the table behind it (absolute values and paired differences).

    python scripts/plot_search_curves.py runs/curves/random.json runs/curves/encoder.json \
        --out docs/figures/search-curves.png
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = (("psnr_hole", "hole PSNR (dB)"), ("ssim_hole", "hole SSIM"), ("loss", "total loss"))


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and 95 % CI half-width (1.96 std / sqrt(n), std with n-1)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(var / n)


def cells(run: dict, mask: str, faces: list[int]) -> dict[tuple[int, int], dict[str, list[float]]]:
    """{(k, t): {metric: values over ``faces``}} of one run and mask."""
    entry = run["masks"][mask]
    position = {face: i for i, face in enumerate(entry["faces"])}
    out = {}
    for key, values in entry["search"].items():
        k, t = (int(part[1:]) for part in key.split("_"))
        out[(k, t)] = {m: [values[m][position[f]] for f in faces] for m in values}
    return out


def merge_by_start(runs: list[dict]) -> list[dict]:
    """One run per start kind. Files of the same start either hold other faces (faces split
    across jobs with ``--first``: concatenated, mask by mask) or the same faces with other cells
    (a longer search with fewer candidates: its cells join, and a cell both hold keeps the first
    file's values, which are the same search); faces that overlap only in part are an error."""
    merged: dict[str, dict] = {}
    for run in runs:
        start = run["args"]["start"]
        if start not in merged:
            merged[start] = json.loads(json.dumps(run))
            continue
        for mask, entry in run["masks"].items():
            into = merged[start]["masks"].setdefault(
                mask, {"faces": [], "search": {}, "fills": {}, "seconds": []}
            )
            if into["faces"] == entry["faces"]:
                for key, cell in entry["search"].items():
                    into["search"].setdefault(key, cell)
                continue
            twice = set(into["faces"]) & set(entry["faces"])
            if twice:
                raise ValueError(
                    f"{start} start, mask {mask}: faces {sorted(twice)} appear in two files that "
                    "do not hold the same faces"
                )
            into["faces"] += entry["faces"]
            into["seconds"] += entry["seconds"]
            for group in ("search", "fills"):
                for key, cell in entry[group].items():
                    target = into[group].setdefault(key, {m: [] for m in cell})
                    for metric, values in cell.items():
                        target[metric] += values
    return list(merged.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="JSON files of scripts/search_curves.py")
    parser.add_argument("--reference", default="k64_t1000", help="the random-start reference cell")
    parser.add_argument("--out", required=True)
    parser.add_argument("--table", default=None, help="also write the printed table to this file")
    args = parser.parse_args()
    if args.table:
        with io.StringIO() as text, contextlib.redirect_stdout(text):
            plot(args)
            table = text.getvalue()
        print(table, end="")
        Path(args.table).write_text(table)
    else:
        plot(args)


def paired(values: list[float], reference: list[float]) -> tuple[float, float]:
    """Mean and 95 % CI half-width of the per-face differences ``values - reference``."""
    return mean_ci([a - b for a, b in zip(values, reference, strict=True)])


def plot(args: argparse.Namespace) -> None:
    """Rows: hole PSNR, hole SSIM and total loss as paired differences to the random-start
    reference on the same faces (the faces' own spread, several dB, would hide every
    difference; the loss on a symmetric log scale); the classical fills as horizontal lines on
    the same scale."""
    runs = merge_by_start([json.loads(Path(p).read_text()) for p in args.runs])
    masks = [m for m in runs[0]["masks"] if all(m in r["masks"] for r in runs)]
    k_ref, t_ref = (int(part[1:]) for part in args.reference.split("_"))
    labels = {
        "psnr_hole": f"Δ hole PSNR (dB) vs random {k_ref}x{t_ref}",
        "ssim_hole": f"Δ hole SSIM vs random {k_ref}x{t_ref}",
        "loss": f"Δ total loss vs random {k_ref}x{t_ref}",
    }
    fig, axes = plt.subplots(len(METRICS), len(masks), figsize=(4.2 * len(masks), 9), squeeze=False)
    for col, mask in enumerate(masks):
        faces = sorted(set.intersection(*(set(r["masks"][mask]["faces"]) for r in runs)))
        reference = None
        for run in runs:
            if run["args"]["start"] == "random":
                reference = cells(run, mask, faces).get((k_ref, t_ref))
        if reference is None:
            raise ValueError(
                f"mask {mask}: no random-start run holds the reference {args.reference}"
            )
        print(f"## {mask}: n = {len(faces)} faces ({faces[0]}..{faces[-1]})")
        print(
            "| start | k | t | k x t | hole PSNR (dB) | hole SSIM | total loss | paired Δ hole PSNR "
            f"vs random {args.reference} | paired Δ hole SSIM | paired Δ loss |"
        )
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for run in runs:
            start = run["args"]["start"]
            table = cells(run, mask, faces)
            for k in sorted({k for k, _ in table}):
                ts = sorted(t for kk, t in table if kk == k)
                for t in ts:
                    row = ["{:.3f} ± {:.3f}".format(*mean_ci(table[(k, t)][m])) for m, _ in METRICS]
                    row += [
                        "{:+.3f} ± {:.3f}".format(*paired(table[(k, t)][m], reference[m]))
                        for m, _ in METRICS
                    ]
                    print(f"| {start} | {k} | {t} | {k * t} | " + " | ".join(row) + " |")
                for row, (metric, _) in enumerate(METRICS):
                    stats = [paired(table[(k, t)][metric], reference[metric]) for t in ts]
                    axes[row][col].errorbar(
                        [k * max(t, 1) for t in ts],  # iteration 0 (the starts) drawn at k x 1
                        [s[0] for s in stats],
                        yerr=[s[1] for s in stats],
                        marker="o" if start == "random" else "s",
                        linestyle="--" if start == "random" else "-",
                        capsize=2,
                        label=f"{start} start, {k} cand.",
                    )
        for row, (metric, _) in enumerate(METRICS):
            ax = axes[row][col]
            ax.axhline(0.0, color="grey", linewidth=1, label=f"random {k_ref}x{t_ref}")
            if metric == "loss":  # from +100 at the random starts to about 0
                ax.set_yscale("symlog", linthresh=1.0)
            ax.axvline(k_ref * t_ref / 10, color="red", linewidth=0.8, linestyle=":")
            ax.set_xscale("log")
            ax.set_ylabel(labels[metric])
        fills = runs[0]["masks"][mask]["fills"]
        position = {f: i for i, f in enumerate(runs[0]["masks"][mask]["faces"])}
        for row, (metric, _) in enumerate(METRICS[:2]):
            values = {name: [fills[name][metric][position[f]] for f in faces] for name in fills}
            best = max(values, key=lambda name: mean_ci(values[name])[0])
            mean, _ = mean_ci(values[best])
            shift, ci = paired(values[best], reference[metric])
            axes[row][col].axhline(
                shift, color="black", linestyle="-.", linewidth=1, label=f"best fill ({best})"
            )
            print(
                f"best classical fill on {metric}: {best} {mean:.3f}; paired Δ vs random "
                f"{args.reference}: {shift:+.3f} ± {ci:.3f}"
            )
        axes[0][col].set_title(f"{mask} (n = {len(faces)})")
        axes[-1][col].set_xlabel("candidates x iterations")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
