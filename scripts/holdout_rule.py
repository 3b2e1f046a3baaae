"""A stopping rule (held-out or discrepancy) against the paper's rule, from
``scripts/search_curves.py`` runs.

For each start (random, encoder) and mask: the paper's rule's hole PSNR / SSIM after each
budget (the last iterate, the smallest total loss), its peak over the budgets (the best fixed
budget, chosen on these faces' hole truth: an oracle no search can use), and the held-out rule's
choice after the largest budget, paired per face against that peak and against the encoder's
0-iteration start. Writes a markdown table and a figure (one panel per mask: both rules' hole
PSNR against the iterations, each start). A measurement script, not library code.

``--rule holdout`` reads ``<start>-paper.json`` and ``<start>-holdout.json`` (two runs);
``--rule discrepancy`` reads ``<start>-discrepancy.json``, one run holding both rules' cells on
the same trajectory, and plots the rule at the largest budget only (its rho is calibrated there).

    python scripts/holdout_rule.py --runs /work/runs27 --out docs/figures/dcgan-celeba-half-holdout
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and 95 % half-width of the per-face differences ``a - b``."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else 0.0
    return mean, 1.96 * std / math.sqrt(n)


def cells(entry: dict, key: str, prefix: str = "") -> dict[int, list[float]]:
    """Snapshot iteration -> per-face values of ``key`` for the largest candidate subset, of
    the cells named ``{prefix}k{k}_t{t}``."""
    k = max(int(name.split("_t")[0].split("k")[-1]) for name in entry["search"])
    return {
        int(name.split("_t")[1]): values[key]
        for name, values in entry["search"].items()
        if name.startswith(f"{prefix}k{k}_")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", required=True, help="folder of the runs (see the docstring)")
    parser.add_argument("--rule", choices=["holdout", "discrepancy"], default="holdout")
    parser.add_argument("--out", required=True, help="path without suffix: .md and .png written")
    args = parser.parse_args()
    runs = Path(args.runs)
    lines = [
        "| start | mask | n | paper's rule by budget: hole PSNR (dB) | its peak (budget) | "
        f"{args.rule} rule | rule − peak: Δ hole PSNR | Δ hole SSIM | rule − encoder start: "
        "Δ PSNR | Δ SSIM | kept iteration (mean) |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    paper_name = "paper" if args.rule == "holdout" else "discrepancy"
    prefix = "" if args.rule == "holdout" else "discrepancy_"
    starts = [s for s in ("random", "encoder") if (runs / f"{s}-{paper_name}.json").exists()]
    masks = list(json.loads((runs / f"{starts[0]}-{paper_name}.json").read_text())["masks"])
    figure, axes = plt.subplots(1, len(masks), figsize=(4 * len(masks), 3.4), squeeze=False)
    for start in starts:
        paper = json.loads((runs / f"{start}-{paper_name}.json").read_text())["masks"]
        rule_path = runs / f"{start}-{args.rule}.json"
        rule = json.loads(rule_path.read_text())["masks"] if rule_path.exists() else {}
        for column, mask in enumerate(masks):
            if mask not in paper or mask not in rule:
                continue
            n = min(len(paper[mask]["faces"]), len(rule[mask]["faces"]))
            psnr = {t: v[:n] for t, v in cells(paper[mask], "psnr_hole").items()}
            ssim = {t: v[:n] for t, v in cells(paper[mask], "ssim_hole").items()}
            rule_psnr = {t: v[:n] for t, v in cells(rule[mask], "psnr_hole", prefix).items()}
            rule_ssim = {t: v[:n] for t, v in cells(rule[mask], "ssim_hole", prefix).items()}
            kept = cells(rule[mask], "kept", prefix) if prefix else {}
            budgets = sorted(psnr)
            means = {t: sum(psnr[t]) / n for t in budgets}
            peak = max(budgets, key=lambda t: means[t])
            last = max(rule_psnr)
            d_psnr = paired(rule_psnr[last], psnr[peak])
            d_ssim = paired(rule_ssim[last], ssim[peak])
            start_cells = "– | –"
            if start == "encoder":
                e_psnr = paired(rule_psnr[last], psnr[0])
                e_ssim = paired(rule_ssim[last], ssim[0])
                start_cells = (
                    f"{e_psnr[0]:+.2f} ± {e_psnr[1]:.2f} | {e_ssim[0]:+.3f} ± {e_ssim[1]:.3f}"
                )
            curve = ", ".join(f"{t}: {means[t]:.2f}" for t in budgets)
            kept_cell = f"{sum(kept[last][:n]) / n:.1f}" if kept else "–"
            lines.append(
                f"| {start} | {mask} | {n} | {curve} | {means[peak]:.2f} ({peak}) | "
                f"{sum(rule_psnr[last]) / n:.2f} | {d_psnr[0]:+.2f} ± {d_psnr[1]:.2f} | "
                f"{d_ssim[0]:+.3f} ± {d_ssim[1]:.3f} | {start_cells} | {kept_cell} |"
            )
            axis = axes[0][column]
            x = [max(t, 1) for t in budgets]
            axis.plot(x, [means[t] for t in budgets], "o-", label=f"{start}: paper's rule")
            rule_budgets = sorted(rule_psnr) if args.rule == "holdout" else [last]
            axis.plot(
                [max(t, 1) for t in rule_budgets],
                [sum(rule_psnr[t]) / n for t in rule_budgets],
                "s--",
                label=f"{start}: {args.rule} rule",
            )
            axis.set_xscale("log")
            axis.set_title(f"{mask} (n = {n})")
            axis.set_xlabel("iterations (0 plotted at 1)")
            axis.set_ylabel("hole PSNR (dB)")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    out = Path(args.out)
    figure.savefig(out.with_suffix(".png"), dpi=110)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
