"""Quality of the DCGAN latent search against its budget (candidates x iterations), per face.

One search of N candidates x K iterations per face yields every smaller budget: Adam works per
element and each candidate's loss is its own (``faceinpaint.latent_search``), so the first ``k``
candidates of an N-candidate search are exactly a k-candidate search. At each snapshot
iteration ``t`` every candidate's total loss is evaluated at its current z, and for each subset
size ``k`` the best of the first ``k`` is composited (Poisson-blended if asked) and scored:
hole PSNR, hole SSIM and its total loss, one value per face. The classical fills are scored on
the same faces and masks. Faces and masks are the eval protocol's (``faceinpaint eval``: same
seed, same mask hash), so the numbers are comparable with its tables.

Starts: ``random`` (the thesis: the search's seeded prior draws) or ``encoder`` (an encoder
checkpoint maps the damaged face and its mask to z; candidate 0 starts at E(y), the others at
E(y) plus Gaussian noise of std ``--encoder_perturbation``, clipped to [-1, 1]).

With ``--holdout SHARE`` the search runs under the held-out rule instead (``LatentSearch``'s
``holdout``: a seeded share of the context pixels is left out of the objective; each candidate
keeps its iterate with the smallest held-out error, and the best candidate is the one with the
smallest): the cell ``k{k}_t{t}`` is then what the rule keeps after ``t`` iterations. The rule
never reads the hole.

With ``--discrepancy RHO`` the same run also scores the discrepancy stop (``LatentSearch``'s
``discrepancy``, calibrated by ``scripts/calibrate_discrepancy.py``): it changes no step of the
search, only which iterate each candidate keeps, so the cell ``discrepancy_k{k}_t{t}`` is what the
rule keeps from the first ``t`` iterations (``t`` playing K; rho is calibrated for one K, so
only that budget's cell is the rule as calibrated), beside the paper's ``k{k}_t{t}``
on the same trajectory, with ``kept`` the chosen candidate's kept iteration.

Results go to a JSON file, rewritten atomically after every face; a run started again with the
same ``--out`` continues after the faces already there. This is a measurement script, not
library code (docs/RESULTS.md, "Real faces", gives the commands).

    python scripts/search_curves.py --dcgan runs/.../last.ckpt --masks center left right \
        --limit 16 --candidates 64 --iterations 1000 --out runs/curves/random.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from faceinpaint.batch import IMAGE, INDEX, MASK, composite, to_unit
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.device import synchronize
from faceinpaint.eval.protocols import load_protocol
from faceinpaint.eval.tasks import task_datamodule
from faceinpaint.io import write_text
from faceinpaint.latent_search import (
    DiscrepancyStop,
    HeldOutSelection,
    LatentSearch,
    SearchSettings,
    encoder_starts,
    frozen_eval,
    initial_latents,
)
from faceinpaint.lit.inference import load_inpainter
from faceinpaint.lit.loading import load_latent_encoder
from faceinpaint.losses.latent_search import context_weights, holdout_split
from faceinpaint.metrics import hole_psnr_per_sample, hole_ssim_per_sample
from faceinpaint.ops.fills import BASELINES
from faceinpaint.ops.poisson import paste_or_blend
from faceinpaint.provenance import git_revision


def scores(filled: Tensor, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) hole PSNR and hole SSIM of composited results, all (B,3,H,W) in [-1, 1]."""
    result, target = to_unit(composite(filled, image, mask)), to_unit(image)
    return hole_psnr_per_sample(result, target, mask), hole_ssim_per_sample(result, target, mask)


def best_of_subsets(
    total: Tensor,
    generated: Tensor,
    image: Tensor,
    mask: Tensor,
    subsets: list[int],
    poisson_iterations: int,
    kept: Tensor | None = None,
) -> dict[str, dict[str, Tensor]]:
    """For each subset size k, the candidate of the first k with the smallest ``total`` (B, N),
    its G(z) from ``generated`` (B,N,3,H,W) composited (blended if asked) and scored:
    ``{"k{k}": {"psnr_hole", "ssim_hole", "loss"[, "kept"]}}``, each (B,); ``kept`` (B, N):
    each candidate's kept iteration."""
    rows = torch.arange(total.shape[0], device=total.device)
    hole = mask.to(image.dtype)
    damaged = torch.where(hole.bool(), torch.zeros_like(image), image)
    cells = {}
    for k in subsets:
        best = total[:, :k].argmin(dim=1)  # (B,)
        chosen = generated[rows, best]  # (B, 3, H, W)
        psnr, ssim = scores(paste_or_blend(chosen, damaged, hole, poisson_iterations), image, mask)
        cells[f"k{k}"] = {"psnr_hole": psnr, "ssim_hole": ssim, "loss": total[rows, best]}
        if kept is not None:
            cells[f"k{k}"]["kept"] = kept[rows, best].to(psnr.dtype)
    return cells


def search_snapshots(
    search: LatentSearch,
    start: Tensor,
    image: Tensor,
    mask: Tensor,
    snapshots: list[int],
    subsets: list[int],
    poisson_iterations: int,
    index: Tensor,
    holdout: float = 0.0,
    discrepancy_curve: tuple[tuple[float, float], ...] = (),
) -> dict[str, dict[str, Tensor]]:
    """Run ``search`` from ``start`` (B,N,latent_dim) on (B,3,H,W) faces and (B,1,H,W) masks;
    at each snapshot iteration, for each subset size k, the best of the first k candidates:
    ``{"k{k}_t{t}": {"psnr_hole", "ssim_hole", "loss"}}``, each (B,). With ``holdout`` > 0, the
    held-out rule's choice instead (``loss``: its held-out error). With a ``discrepancy_curve``, also
    ``{"discrepancy_k{k}_t{t}": {..., "kept"}}``: the discrepancy stop's choice at budget t."""
    b, n, latent_dim = start.shape
    hole = mask.to(image.dtype)
    damaged = torch.where(hole.bool(), torch.zeros_like(image), image)
    weights = context_weights(hole, search.settings.context_window)
    held_out = None
    if holdout > 0:
        weights, held_out = holdout_split(weights, holdout, index, search.settings.seed)
    term = search.landmark_term
    out: dict[str, dict[str, Tensor]] = {}
    with frozen_eval(search.generator, search.discriminator), torch.enable_grad():
        targets = term.targets(damaged, hole) if term is not None else None
        latent = start.to(image.dtype).flatten(0, 1).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([latent], lr=search.settings.lr, betas=search.settings.betas)
        selection = None if held_out is None else HeldOutSelection(damaged, held_out, latent)
        stop = None
        if discrepancy_curve:
            if selection is not None:
                raise ValueError("holdout and discrepancy are two rules: score one per run")
            ratio = SearchSettings(discrepancy_curve=discrepancy_curve).discrepancy_ratio(
                weights, hole
            )
            stop = DiscrepancyStop(latent, ratio)
        for step in range(max(snapshots) + 1):
            if step in snapshots:
                with torch.no_grad():  # the iterate itself: the paper's rule's choice
                    total, parts, generated = search.objective(
                        latent, damaged, weights, targets, final=True, landmark_term=term
                    )  # (B, N), (B, N) each, (B, N, 3, H, W)
                    if stop is not None:  # what the discrepancy stop keeps, t playing K
                        kept = stop.kept(latent, parts)
                        kept_total, _, kept_generated = search.objective(
                            kept, damaged, weights, targets, final=True, landmark_term=term
                        )
                    if selection is not None:  # what the held-out rule keeps, instead
                        selection.update(latent, generated, parts, step)
                        _, _, generated = search.objective(
                            selection.latent,
                            damaged,
                            weights,
                            targets,
                            final=True,
                            landmark_term=term,
                        )
                        total = selection.error
                if stop is not None:
                    cells = best_of_subsets(
                        kept_total,
                        kept_generated,
                        image,
                        mask,
                        subsets,
                        poisson_iterations,
                        stop.iteration,
                    )
                    out |= {f"discrepancy_{key}_t{step}": cell for key, cell in cells.items()}
                cells = best_of_subsets(total, generated, image, mask, subsets, poisson_iterations)
                out |= {f"{key}_t{step}": cell for key, cell in cells.items()}
            if step == max(snapshots):
                break
            search.step(latent, optimizer, damaged, weights, targets, term, selection or stop, step)
    return out


def discrepancy_curve(value: str) -> tuple[tuple[float, float], ...]:
    """(coverage, rho) points: one rho for every mask, or a calibration file's ``curve``."""
    if Path(value).suffix != ".json":
        return ((0.0, float(value)),) if float(value) > 0 else ()
    return tuple(tuple(point) for point in json.loads(Path(value).read_text())["curve"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dcgan", required=True)
    parser.add_argument("--config", default="configs/eval/thesis.yaml")
    parser.add_argument("--data_root", default=None, help="default: the config's data root")
    parser.add_argument("--masks", nargs="+", default=["center", "left", "right"])
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--first", type=int, default=0, help="first face (faces first..limit-1)")
    parser.add_argument("--start", choices=["random", "encoder"], default="random")
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--encoder_perturbation", type=float, default=0.1)
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--subsets", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--snapshots", type=int, nargs="+", default=[0, 10, 30, 100, 300, 1000])
    parser.add_argument("--landmark_weight", type=float, default=0.0)
    parser.add_argument("--landmark_checkpoint", default=None)
    parser.add_argument("--poisson_iterations", type=int, default=300)
    parser.add_argument("--baselines", nargs="*", default=["mean", "harmonic", "telea", "ns"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1, help="faces searched together")
    parser.add_argument(
        "--holdout", type=float, default=0.0, help="the held-out rule's share (0: the paper's)"
    )
    parser.add_argument(
        "--discrepancy",
        default="0",
        help="also score the discrepancy stop: one rho, or the JSON that "
        "scripts/calibrate_discrepancy.py wrote (its curve: rho by the mask's coverage)",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if max(args.subsets) > args.candidates:
        raise ValueError(f"subsets {args.subsets} exceed candidates {args.candidates}")

    overrides: dict[str, Any] = {
        "candidates": args.candidates,
        "iterations": max(args.snapshots),
        "landmark_weight": args.landmark_weight,
    }
    if args.landmark_checkpoint:
        overrides["landmark_checkpoint"] = args.landmark_checkpoint
    device = torch.device(args.device)
    model = load_inpainter(args.dcgan, **overrides).to(device)
    search = model.latent_search()
    encoder = None
    if args.start == "encoder":
        encoder = load_latent_encoder(args.encoder).to(device, torch.float32)

    sections = yaml.safe_load(Path(args.config).read_text())
    data = dict(sections["data"])
    if args.data_root is not None:
        data["root"] = args.data_root
    base = FaceDataModule(**data)
    protocol = load_protocol(args.config)
    tasks = {task.mask: task for task in protocol.tasks()}

    out_path = Path(args.out)
    results: dict[str, Any] = (
        json.loads(out_path.read_text())
        if out_path.exists()
        else {
            "args": vars(args),
            "revision": git_revision(),
            "candidate_iterations_note": "k candidates x t iterations",
            "masks": {},
        }
    )
    for mask_name in args.masks:
        task = tasks[mask_name]
        datamodule = task_datamodule(base, task)
        dataset = datamodule.dataset(task.split)
        entry = results["masks"].setdefault(
            mask_name, {"faces": [], "search": {}, "fills": {}, "seconds": []}
        )
        todo = [f for f in range(args.first, args.limit) if f not in entry["faces"]]
        for first in range(0, len(todo), args.batch):
            faces = todo[first : first + args.batch]
            batch = datamodule.prepare_batch(
                {k: v.to(device) for k, v in dataset.__getitems__(faces).items()}, "test"
            )
            image, mask, index = batch[IMAGE], batch[MASK], batch[INDEX]
            damaged = torch.where(mask.bool(), torch.zeros_like(image), image)
            synchronize(device)
            started = time.perf_counter()
            if encoder is None:
                start = initial_latents(
                    index,
                    args.candidates,
                    model.generator.latent_dim,
                    search.latent_prior,
                    search.settings.seed,
                )
            else:
                start = encoder_starts(
                    encoder,
                    damaged,
                    mask,
                    index,
                    args.candidates,
                    args.encoder_perturbation,
                    search.settings.seed,
                )
            curves = search_snapshots(
                search,
                start,
                image,
                mask,
                args.snapshots,
                args.subsets,
                args.poisson_iterations,
                index,
                args.holdout,
                discrepancy_curve(args.discrepancy),
            )
            synchronize(device)
            seconds = (time.perf_counter() - started) / len(faces)
            for key, values in curves.items():
                cell = entry["search"].setdefault(key, {name: [] for name in values})
                for name, value in values.items():
                    cell[name] += value.tolist()
            for name in args.baselines:
                psnr, ssim = scores(BASELINES[name](damaged, mask), image, mask)
                cell = entry["fills"].setdefault(name, {"psnr_hole": [], "ssim_hole": []})
                cell["psnr_hole"] += psnr.tolist()
                cell["ssim_hole"] += ssim.tolist()
            entry["faces"] += faces
            entry["seconds"] += [seconds] * len(faces)
            write_text(json.dumps(results), out_path)
            best = curves[f"k{max(args.subsets)}_t{max(args.snapshots)}"]["psnr_hole"]
            print(
                f"{mask_name} faces {faces}: {seconds:.0f} s per face, hole PSNR "
                f"{[round(v, 2) for v in best.tolist()]}",
                flush=True,
            )


if __name__ == "__main__":
    main()
