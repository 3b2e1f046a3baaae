"""``faceinpaint eval``: every method on every mask type of a protocol, on identical masks.

For each task of the protocol (mask type x image size) the split's first ``n`` faces (or the
protocol's fixed ``sample`` of them, ``faceinpaint.eval.protocols.sample_indices``) are served
by the shared DataModule (at the task's size and crop, masks from the protocol's seed), each
method fills the **damaged** faces (hole pixels zeroed: no method can read the hole), and
:class:`~faceinpaint.metrics.DefaultMetrics` scores the composited results on the
batch's device. Methods: the checkpoints of any registered method (``--checkpoints``), and the classical fills
(mean, harmonic, Telea, Navier-Stokes, nearest neighbour from the train split, PatchMatch and
biharmonic).

Two checks come first, from what each checkpoint recorded of its data
(``faceinpaint.data.provenance``): the task's frame (crop and size) must be the one the
checkpoint trained on (or, with ``checkpoint_frame``, the task takes the checkpoint's), and no
evaluated face may be one the checkpoint trained on (unless ``allow_train_overlap``: then the
row says how many were). Landmark networks (the NME's, the search's) must share the frame too.

Outputs in ``out``: ``results.jsonl`` (one row per method x checkpoint x protocol x mask type,
appended; rows of the same task must carry the same mask hash), ``<protocol>.md`` (the table of
this run, with its command, data, hardware, date and revision) and ``<protocol>-<mask>.png``
(original / masked / one row per method).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.device import resolve_device
from faceinpaint.eval.dashboard import log_eval, open_eval_run
from faceinpaint.eval.exchange import predictions_method
from faceinpaint.eval.methods import (
    BASELINE_NAMES,
    DEFAULT_BASELINES,
    CheckpointSpec,
    Method,
    NearestNeighbourBank,
    baseline_method,
    checkpoint_method,
    distinct_rows,
    nearest_neighbour_method,
)
from faceinpaint.eval.plots import plot_eval_bars, plot_search_history, save_figure
from faceinpaint.eval.protocols import (
    MaskTask,
    Protocol,
    as_protocol,
    check_mask_hashes,
    task_mask_hash,
)
from faceinpaint.eval.report import grid_image, markdown_report
from faceinpaint.eval.tasks import (
    checkpoints_frame,
    grid_labels,
    method_key,
    run_task,
    task_datamodule,
    training_overlap,
)
from faceinpaint.io import plain, read_jsonl, save_image, write_jsonl, write_text
from faceinpaint.landmarks.network import LandmarkNet
from faceinpaint.lit.landmarks import check_landmark_frame
from faceinpaint.metrics import PerceptualNetworks
from faceinpaint.ops.fills import FILLS_WITHOUT_BANK, check_fill_names
from faceinpaint.provenance import command_line, git_revision, hardware

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


def data_source(datamodule: FaceDataModule) -> str:
    return "embedded procedural faces" if datamodule.is_synthetic else str(datamodule.root)


def data_description(rows: Sequence[dict[str, Any]], protocol: Protocol) -> str:
    """Source, split, faces per mask and the crop of each size, e.g. for the table's header."""
    if not rows:
        return "-"
    n = rows[0]["n"]
    if protocol.sample is None:
        faces = f"first {n} faces"
    elif n == protocol.sample:
        faces = f"a fixed random sample of {n} faces (sample_seed {protocol.sample_seed})"
    else:
        faces = (
            f"the first {n} of a fixed random sample of {protocol.sample} faces "
            f"(sample_seed {protocol.sample_seed})"
        )
    described = f"{rows[0]['data']}, split {protocol.split}, {faces}"
    if rows[0]["config"]["data"].get("root") is None:
        return described  # the embedded faces are drawn at each size, not cropped
    crops = {}
    for row in rows:
        crops[row["image_size"]] = row["config"]["data"].get("crop_size")
    frames = ", ".join(f"{size} px from a crop of {crop} x width" for size, crop in crops.items())
    return f"{described}; {frames}"


def evaluate(
    data: FaceDataModule,
    protocol: Protocol,
    checkpoints: list[str | dict[str, Any]] | None = None,
    vaegan: str | list[str] | None = None,
    dcgan: str | list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    baselines: str | tuple[str, ...] = DEFAULT_BASELINES,
    nn_bank_size: int = 2000,
    landmark_checkpoint: str | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    oracles: bool = False,
    skip_mismatched: bool = False,
    checkpoint_frame: bool = False,
    allow_train_overlap: bool = False,
    grid_samples: int = 8,
    metrics: str | tuple[str, ...] = (),
    predictions: str | None = None,
    wandb: bool | None = None,
    device: str = "auto",
    out: str = "outputs/eval",
    quiet: bool = False,
) -> list[dict[str, Any]]:
    """Benchmark checkpoints and classical fills on a protocol's fixed masks; write the tables.

    Args:
        protocol: the ``protocol:`` section of a configs/eval/*.yaml (name, masks, image_sizes,
            seed, split, crop_sizes). Its sizes and crops replace ``data.image_size`` / ``crop_size``.
        checkpoints: checkpoints (``.ckpt``) or shipped weights (``.safetensors``) of any
            registered method (VAE-GAN, DCGAN latent search, Context Encoder, ...), each a path
            or ``{path: ..., overrides: {...}}``; ``overrides`` replace the inference settings
            its class names (``inference_settings``: a DCGAN's search settings by their
            ``SearchSettings`` names, ``candidates``, ``iterations``, ``landmark_weight``,
            ``poisson_iterations``, ``holdout`` ..., and ``encoder_checkpoint``; a VAE-GAN's or a
            Context Encoder's ``poisson_iterations``). Rows are named by what the settings
            switch on (``dcgan+encoder+poisson``, ``vaegan+poisson``, ``ce+poisson``).
        vaegan: shortcut for VAE-GAN checkpoints (a path or a list): they must hold one.
        dcgan: shortcut for DCGAN latent-search checkpoints: they must hold one.
        overrides: inference settings for every checkpoint whose class takes them, e.g.
            ``{candidates: 8, iterations: 200}`` (an entry's own ``overrides`` win); a name
            that no checkpoint takes is an error.
        baselines: classical fills, a name or a list: mean, harmonic, telea, ns, nn (nearest
            training face), patchmatch (Barnes et al. 2009, PyPatchMatch), biharmonic
            (scikit-image); ``[]`` for none. All of them by default; where the package of a
            named fill is missing or broken, that is an error before any work.
        nn_bank_size: train faces (the first ones) the nearest-neighbour fill searches.
        landmark_checkpoint: a landmark network checkpoint: adds the landmark NME of the result
            against the original.
        limit: evaluate the first ``limit`` faces of the split (None: all); with the protocol's
            ``sample``, the first ``limit`` faces of the sample (themselves a random sample).
        batch_size: faces per batch (the DCGAN search holds batch x candidates images).
        oracles: also add, for each checkpoint, a diagnostic row that sees the whole original
            (``<kind>-oracle``, the method's ``reconstruct``: the VAE-GAN's reconstruction of the
            unmasked face, the DCGAN generator's closest image to it). Their hole figures bound
            what the model can reach; they are not inpainting results.
        skip_mismatched: a checkpoint whose image size matches none of the protocol's sizes is
            skipped with a logged reason instead of being an error (for suites over protocols).
        checkpoint_frame: evaluate at the frame (crop) the checkpoints were trained on when the
            protocol asks for another; without it that is an error naming both frames.
        allow_train_overlap: score faces a checkpoint trained on (a diagnostic: its rows say
            "trained on k/n"); without it that is an error naming them.
        grid_samples: faces per image grid.
        metrics: optional metrics besides the default ones, a name or a list of the names
            registered with ``optional=True`` in ``faceinpaint.metrics.METRICS`` (e.g. ``lpips``,
            ``fid``; FID needs torch-fidelity). Their pretrained weights are downloaded into
            torch hub's cache (``$TORCH_HOME``) on first use; where that fails the run stops,
            naming the file to fetch.
        predictions: an outside method's outputs on this protocol's masks,
            ``<predictions>/<protocol>/<mask>/<image id>.png`` for the faces ``faceinpaint masks
            export`` wrote (``faceinpaint.eval.exchange``); scored as a row named after the
            folder, composited with the known pixels like every method.
        wandb: open a wandb run (``job_type="eval"``, grouped with the checkpoints' training
            run) for the table, per-mask metrics, grids and charts. None (default): only when a
            checkpoint was trained with a wandb logger. Offline unless you are logged in.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1``...
        out: folder of results.jsonl, <protocol>.md, the <protocol>-<mask>.png grids, the
            <protocol>.png bar chart and (iterative methods) <protocol>-<mask>-search.png loss
            curves.
        quiet: do not print the report when done (it is <protocol>.md in ``out``).

    Returns the result rows written by this run.
    """
    started = time.perf_counter()
    protocol = as_protocol(protocol)
    baselines = _as_list(baselines)
    target = resolve_device(device)
    check_fill_names(baselines, BASELINE_NAMES)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    perceptual = PerceptualNetworks.load(_as_list(metrics), target) if metrics else None
    specs = checkpoint_specs(checkpoints, vaegan, dcgan)
    methods = distinct_rows(
        [
            checkpoint_method(spec, target, oracle, overrides)
            for spec in specs
            for oracle in (False, True)[: 1 + oracles]
        ]
    )
    untaken = sorted(set(overrides or {}) - {name for m in methods for name in m.settings})
    if untaken:
        raise ValueError(
            f"--overrides {untaken}: no checkpoint's method takes them (their settings: "
            f"{sorted({name for m in methods for name in m.settings})})"
        )
    usable, notes = usable_methods(methods, protocol, skip_mismatched)
    loop = EvalLoop(limit, batch_size, grid_samples, landmark_checkpoint, target, Path(out))
    plans = plan_tasks(
        data, protocol, usable, loop, baselines, nn_bank_size, predictions, notes,
        checkpoint_frame, allow_train_overlap,
    )  # fmt: skip
    rows, images = score_tasks(plans, protocol, loop, perceptual)
    report, provenance = write_results(rows, protocol, loop, notes, images, started)
    trained_by = [m.wandb_run for m in usable if m.wandb_run]
    if wandb or (wandb is None and trained_by):
        run_config = {"protocol": protocol.describe(), "limit": limit, "batch_size": batch_size}
        run = open_eval_run(
            protocol.name, loop.out, trained_by, provenance | run_config | {"notes": notes}
        )
        log_eval(run, protocol.name, rows, images)
        run.finish()
    if not quiet:
        print(report)
    return rows


@dataclass(frozen=True)
class EvalLoop:
    """The settings of the evaluation loop itself, shared by every method and task."""

    limit: int | None
    batch_size: int
    grid_samples: int
    landmark_checkpoint: str | None
    device: torch.device
    out: Path


@dataclass
class TaskPlan:
    """A task with its data, its methods and each checkpoint's overlap with the scored faces."""

    task: MaskTask
    datamodule: FaceDataModule
    methods: list[Method]
    overlaps: dict[str, int | None]


def checkpoint_specs(
    checkpoints: Sequence[str | dict[str, Any]] | None,
    vaegan: str | Sequence[str] | None,
    dcgan: str | Sequence[str] | None,
) -> list[CheckpointSpec]:
    """The ``--vaegan`` and ``--dcgan`` shortcuts (each must hold its kind), then
    ``--checkpoints`` in their order."""
    specs = [CheckpointSpec(path, kind="vaegan") for path in _as_list(vaegan)]
    specs += [CheckpointSpec(path, kind="dcgan") for path in _as_list(dcgan)]
    return specs + [CheckpointSpec.parse(value) for value in checkpoints or []]


def usable_methods(
    methods: list[Method], protocol: Protocol, skip_mismatched: bool
) -> tuple[list[Method], list[str]]:
    """The methods whose image size the protocol has (others: an error, or skipped with a note
    under ``skip_mismatched``), and the report's notes so far."""
    sizes = {task.image_size for task in protocol.tasks()}
    usable, notes = [], []
    for method in methods:
        if method.image_size in sizes:
            usable.append(method)
            continue
        reason = (
            f"{method.name} checkpoint {method.checkpoint} works at {method.image_size} px; "
            f"protocol {protocol.name!r} is at {sorted(sizes)} px"
        )
        if not skip_mismatched:
            raise ValueError(reason + ": evaluate it with a protocol of its size")
        log.warning("skipping %s", reason)
        notes.append(f"skipped: {reason}")
    if any(method.oracle for method in usable):
        notes.append(
            "oracle rows are diagnostics, not inpainting: they see the whole original, hole "
            "included (vaegan-oracle: the network's reconstruction of the unmasked face; "
            "dcgan-oracle: the generator's closest image to it). Their hole figures bound what "
            "the model can reach."
        )
    for method in usable:
        if method.checkpoint is not None and method.training_images is None:
            notes.append(
                f"{method.name} {method.checkpoint}: its training images are unknown "
                f"({method.provenance}), so they were not checked against the evaluated faces"
            )
        if method.checkpoint is not None and method.frame is None:
            notes.append(
                f"{method.name} {method.checkpoint} saved no data settings: its frame was not "
                "checked against the protocol's"
            )
    return usable, notes


def plan_tasks(
    data: FaceDataModule,
    protocol: Protocol,
    usable: list[Method],
    loop: EvalLoop,
    baselines: list[str],
    nn_bank_size: int,
    predictions: str | None,
    notes: list[str],
    checkpoint_frame: bool,
    allow_train_overlap: bool,
) -> list[TaskPlan]:
    """Every task's data, methods and checks, before any work: a refused frame, training face,
    landmark network or mask hash fails here. Appends to ``notes``."""
    nn_bank = NearestNeighbourBank(nn_bank_size, loop.device) if "nn" in baselines else None
    if nn_bank is not None:
        notes.append(f"nn: the nearest of the first {nn_bank_size} faces of the train split")
    previous = read_jsonl(loop.out / RESULTS_FILE)
    plans = []
    for task in protocol.tasks():
        methods = [m for m in usable if m.image_size == task.image_size]
        asked = task_datamodule(data, task)
        frame = checkpoints_frame(task, asked.frame, methods, checkpoint_frame)
        datamodule = task_datamodule(data, task, frame) if frame is not None else asked
        if frame is not None:
            notes.append(
                f"{task.mask}: evaluated at the checkpoints' frame, {frame}, not the protocol's "
                f"{asked.frame} (--checkpoint_frame)"
            )
        check_landmark_frame(
            loop.landmark_checkpoint, datamodule, f"the landmark NME of {task.mask}"
        )
        for method in methods:
            check_landmark_frame(
                method.landmark_checkpoint, datamodule, f"the latent search of {method.checkpoint}"
            )
        evaluated = task.indices(len(datamodule.dataset(task.split)), loop.limit)
        split_names = datamodule.cached_split(task.split).names
        names = [split_names[index] for index in evaluated]
        overlaps = {
            method_key(m): training_overlap(m, names, task.split, allow_train_overlap)
            for m in methods
        }
        if predictions is not None:
            ids = dict(zip(evaluated, names, strict=True))
            methods.insert(0, predictions_method(predictions, task, ids))
        for name in baselines:
            fill = nearest_neighbour_method(nn_bank.faces(datamodule)) if name == "nn" else None
            methods.append(fill or baseline_method(name))
        # fail before any work when the masks differ from those of earlier rows in `out`
        this_run = {"n": len(evaluated), "method": "(this run)"}
        hashed = this_run | {"mask_hash": task_mask_hash(task, evaluated, loop.device)}
        check_mask_hashes([*previous, task.describe() | hashed])
        plans.append(TaskPlan(task, datamodule, methods, overlaps))
    if any(overlap for plan in plans for overlap in plan.overlaps.values()):
        notes.append(
            "rows marked 'trained on k/n' score k faces the checkpoint trained on "
            "(--allow_train_overlap): diagnostics, not held-out results"
        )
    return plans


def score_tasks(
    plans: list[TaskPlan], protocol: Protocol, loop: EvalLoop, perceptual: Any
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Run every task: its result rows, and its grids and loss-curve plots written to
    ``loop.out`` (``name -> path``)."""
    rows: list[dict[str, Any]] = []
    images: dict[str, Path] = {}
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    made = {"git_revision": git_revision(), "date": date, "device": hardware(loop.device)}
    landmark_net = None
    if loop.landmark_checkpoint is not None:
        landmark_net = LandmarkNet.from_checkpoint(
            loop.landmark_checkpoint, map_location=loop.device
        )
    for plan in plans:
        task, datamodule = plan.task, plan.datamodule
        result = run_task(
            task, datamodule, plan.methods, loop.device, loop.limit, loop.batch_size,
            loop.grid_samples, landmark_net, perceptual,
        )  # fmt: skip
        scored = task.describe() | {"n": result.n, "mask_hash": result.mask_hash}
        made_here = made | {"data": data_source(datamodule)}
        rows += [
            result_row(scored, made_here, method, result, plan, protocol, loop)
            for method in plan.methods
        ]
        name = f"{protocol.name}-{task.mask}"
        images[name] = save_image(grid_image(grid_labels(result.grid)), loop.out / f"{name}.png")
        searched = [method for method in plan.methods if method.history]
        for number, method in enumerate(searched, start=1):
            suffix = f"-{number}" if len(searched) > 1 else ""  # in the order of the checkpoints
            path = loop.out / f"{name}-search{suffix}.png"
            where = "/".join(Path(method.checkpoint).parts[-2:])
            title = f"{method.name} ({where}) search, {protocol.name}/{task.mask}, first batch"
            images[path.stem] = save_figure(plot_search_history(method.history[0], title), path)
    return rows, images


def result_row(
    scored: dict[str, Any],
    made: dict[str, Any],
    method: Method,
    result: Any,
    plan: TaskPlan,
    protocol: Protocol,
    loop: EvalLoop,
) -> dict[str, Any]:
    """One method's row of a task for results.jsonl: what was ``scored`` (task, faces, masks),
    the method's figures, and where and when it was ``made``."""
    key = method_key(method)
    return {
        **scored,
        "method": method.name,
        "checkpoint": method.checkpoint,
        "frame": str(plan.datamodule.frame),
        "train_overlap": plan.overlaps.get(key),
        "metrics": result.metrics[key],
        "seconds_per_face": round(result.seconds_per_face[key], 6),
        **({"paired": result.paired[key]} if key in result.paired else {}),
        **made,
        "config": {
            "protocol": protocol.describe(),
            "data": plain(dict(plan.datamodule.hparams)),
            "method": plain(method.config),
            "run": {
                "limit": loop.limit,
                "batch_size": loop.batch_size,
                "landmark_checkpoint": loop.landmark_checkpoint,
            },
        },
    }


def write_results(
    rows: list[dict[str, Any]],
    protocol: Protocol,
    loop: EvalLoop,
    notes: list[str],
    images: dict[str, Path],
    started: float,
) -> tuple[str, dict[str, Any]]:
    """Append ``rows`` to results.jsonl (mask hashes checked against earlier rows), write the
    report and its bar chart; the report's text and provenance."""
    results_path = loop.out / RESULTS_FILE
    previous = read_jsonl(results_path)
    check_mask_hashes(previous + rows)
    write_jsonl(previous + rows, results_path)
    provenance = {
        "command": command_line(),
        "data": data_description(rows, protocol),
        "hardware": hardware(loop.device),
        "date": rows[0]["date"] if rows else dt.datetime.now(dt.UTC).isoformat(),
        "git_revision": rows[0]["git_revision"] if rows else git_revision(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    sizes = ", ".join(f"{s} px" for s in protocol.image_sizes)
    report = markdown_report(f"{protocol.name}: {sizes}", rows, provenance, notes)
    write_text(report, loop.out / f"{protocol.name}.md")
    title = report.splitlines()[0].lstrip("# ")
    images[protocol.name] = save_figure(
        plot_eval_bars(rows, title), loop.out / f"{protocol.name}.png"
    )
    return report, provenance


def score(
    data: FaceDataModule,
    protocol: Protocol,
    predictions: str,
    baselines: str | tuple[str, ...] = FILLS_WITHOUT_BANK,
    limit: int | None = None,
    batch_size: int = 64,
    grid_samples: int = 8,
    metrics: str | tuple[str, ...] = (),
    device: str = "auto",
    out: str = "outputs/score",
) -> list[dict[str, Any]]:
    """Score an outside method's predictions on the protocol's masks, as ``faceinpaint eval``.

    Args:
        protocol: the ``protocol:`` section of the configs/eval/*.yaml the inputs were
            exported with (``faceinpaint masks export --config ... --out DIR``).
        predictions: the method's outputs, ``<predictions>/<protocol>/<mask>/<image id>.png``;
            the row is named after this folder.
        baselines: classical fills scored beside it (and paired against it); ``[]`` for none.
        limit: the first ``limit`` faces of the split, or of the protocol's sample (None: all);
            as at export.
        batch_size: faces per batch.
        grid_samples: faces per image grid.
        metrics: optional metrics besides the default ones, as eval's.
        device: where the metrics run.
        out: folder of results.jsonl, <protocol>.md and the grids, as eval's.

    Returns the result rows.
    """
    return evaluate(
        data=data,
        protocol=protocol,
        predictions=predictions,
        baselines=baselines,
        limit=limit,
        batch_size=batch_size,
        grid_samples=grid_samples,
        metrics=metrics,
        wandb=False,
        device=device,
        out=out,
    )


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
