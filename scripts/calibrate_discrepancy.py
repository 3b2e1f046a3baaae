"""Calibrate the discrepancy stop's rho on *training* faces (``LatentSearch``'s ``discrepancy``).

For each face and thesis mask the search runs as configured (K iterations, the paper's rule) and
again with the hole revealed (``LatentSearch.project``, from the same starts and budget); rho
is the ratio of the two's weighted context errors, r_K / delta: how much more closely the search
fits the known pixels near the hole than a latent that has to fit the whole face. The
discrepancy stop then keeps each candidate's first iterate with r_t <= r_K / rho. rho depends on
the mask (0.57-0.70 on the centre and halves, 0.98 on random pixels, where the known pixels pin
G(z) almost as tightly as the whole face): each mask's quartiles are written (its median is the
rho ``scripts/search_curves.py`` reads per mask), and the median over every face and mask
(``rho``), and ``curve``: (coverage, rho) points for ``SearchSettings.discrepancy_curve``, each
mask's median at its :func:`context_coverage` (masks of one coverage pooled); training
faces only, so val stays untouched for ``scripts/search_curves.py --discrepancy``. This is a
measurement script, not library code (docs/RESULTS.md gives the commands).

    python scripts/calibrate_discrepancy.py --dcgan DCGAN --start encoder --encoder ENCODER \
        --candidates 4 --iterations 100 --limit 32 --out runs27/rho-encoder.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import yaml

from faceinpaint.batch import IMAGE, INDEX, MASK
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.eval.protocols import load_protocol
from faceinpaint.eval.tasks import task_datamodule
from faceinpaint.io import write_text
from faceinpaint.latent_search import encoder_starts
from faceinpaint.lit.inference import load_inpainter
from faceinpaint.lit.loading import load_latent_encoder
from faceinpaint.losses.latent_search import (
    context_coverage,
    context_weights,
    weighted_context_loss,
)
from faceinpaint.provenance import git_revision


def quartiles(values: list[float]) -> list[float]:
    return [round(v, 4) for v in statistics.quantiles(values, n=4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dcgan", required=True)
    parser.add_argument("--config", default="configs/eval/thesis.yaml")
    parser.add_argument("--masks", nargs="+", default=["center", "left", "right", "random_pixels"])
    parser.add_argument("--first", type=int, default=0, help="first training face")
    parser.add_argument("--limit", type=int, default=32, help="training faces per mask")
    parser.add_argument("--start", choices=["random", "encoder"], default="random")
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--encoder_perturbation", type=float, default=0.1)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8, help="faces searched together")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.start == "encoder" and args.encoder is None:
        parser.error("--start encoder needs --encoder")

    model = load_inpainter(
        args.dcgan,
        candidates=args.candidates,
        iterations=args.iterations,
        landmark_weight=0.0,
        poisson_iterations=0,
        holdout=0.0,
        discrepancy=0.0,
    )
    search = model.latent_search()
    encoder = load_latent_encoder(args.encoder).float() if args.start == "encoder" else None
    base = FaceDataModule(**yaml.safe_load(Path(args.config).read_text())["data"])
    tasks = {task.mask: task for task in load_protocol(args.config).tasks()}
    ratios: dict[str, list[float]] = {}
    coverages: dict[str, list[float]] = {}
    for mask_name in args.masks:
        datamodule = task_datamodule(base, tasks[mask_name])
        dataset = datamodule.dataset("train")
        faces = list(range(args.first, args.first + args.limit))
        for begin in range(0, len(faces), args.batch):
            batch = datamodule.prepare_batch(
                dataset.__getitems__(faces[begin : begin + args.batch]), "test"
            )
            image, mask, index = batch[IMAGE], batch[MASK], batch[INDEX]
            damaged = torch.where(mask.bool(), torch.zeros_like(image), image)
            start = None  # random starts: both searches draw the same ones, as eval does
            if encoder is not None:
                start = encoder_starts(
                    encoder,
                    damaged,
                    mask,
                    index,
                    args.candidates,
                    args.encoder_perturbation,
                    search.settings.seed,
                )
            weights = context_weights(mask, search.settings.context_window)
            fitted = search(image, mask, index, start).generated
            revealed = search.project(image, index, start).generated
            residual = weighted_context_loss(fitted, damaged, weights)
            level = weighted_context_loss(revealed, damaged, weights)
            ratios.setdefault(mask_name, []).extend((residual / level).tolist())
            coverages.setdefault(mask_name, []).extend(context_coverage(weights, mask).tolist())
            print(
                f"{mask_name} faces {index.tolist()}: r_K / delta {ratios[mask_name][-len(index) :]}"
            )
    every = [ratio for values in ratios.values() for ratio in values]
    rho = min(1.0, statistics.median(every))
    # the curve: masks of one coverage (the two halves) pool their faces
    pooled: dict[float, list[float]] = {}
    for name, values in ratios.items():
        pooled.setdefault(round(statistics.mean(coverages[name]), 3), []).extend(values)
    curve = [[c, round(min(1.0, statistics.median(v)), 4)] for c, v in sorted(pooled.items())]
    result = {
        "args": vars(args),
        "revision": git_revision(),
        "rho": round(rho, 4),
        "masks": {
            name: {
                "n": len(v),
                "quartiles": quartiles(v),
                "coverage": round(statistics.mean(coverages[name]), 4),
            }
            for name, v in ratios.items()
        },
        "curve": curve,  # SearchSettings.discrepancy_curve
        "ratios": ratios,
    }
    write_text(json.dumps(result, indent=1), Path(args.out))
    print(f"discrepancy_curve (coverage, rho): {curve}")
    print(f"rho {rho:.4f} (median of {len(every)} faces x masks); per mask quartiles:")
    for name, entry in result["masks"].items():
        print(f"  {name}: {entry['quartiles']} (n {entry['n']})")


if __name__ == "__main__":
    main()
