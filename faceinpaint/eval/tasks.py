"""One task of a protocol (mask type x image size): its data, its checks, and every method on it.

:func:`run_task` serves the split's first faces (or the protocol's fixed sample of them) at the
task's size and crop with the protocol's masks, lets each method fill the **damaged** faces (hole pixels zeroed: no method can read the
hole), times it, and scores the composited results with
:class:`~faceinpaint.metrics.DefaultMetrics` (every registered default metric) on the batch's
device.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from faceinpaint.batch import IMAGE, INDEX, MASK, composite, to_unit
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.masks import mask_hash
from faceinpaint.data.provenance import FaceFrame
from faceinpaint.device import synchronize
from faceinpaint.eval.methods import BASELINE_NAMES, Method
from faceinpaint.eval.protocols import MaskTask, task_mask_hash
from faceinpaint.losses.landmark import landmark_nme
from faceinpaint.metrics import DefaultMetrics, PerceptualNetworks, summary_statistics


def summarize(values: Tensor) -> dict[str, float]:
    """mean, std (n-1), max, min, ci95 and n of the finite values of a (N,) tensor."""
    values = values.detach().double().flatten()
    values = values[torch.isfinite(values)]
    n = values.numel()
    if n == 0:
        return {
            "mean": math.nan,
            "std": math.nan,
            "max": math.nan,
            "min": math.nan,
            "ci95": math.nan,
            "n": 0,
        }
    return summary_statistics(values)


PAIRED_METRICS = ("psnr_hole", "ssim_hole")


def paired_against_fills(
    values: dict[str, dict[str, Tensor]], fills: Sequence[str]
) -> dict[str, dict[str, dict[str, float | str]]]:
    """Per method key not in ``fills`` and per metric of ``PAIRED_METRICS``: the classical fill
    with the highest mean (``against``) and the summary of the per-face differences, method
    minus that fill, on the same faces and masks (a paired interval: much narrower than the two
    unpaired ones when both track how hard each face is). ``values``: key -> metric -> (N,)."""
    if not fills:
        return {}
    paired = {}
    for key, metrics in values.items():
        if key in fills:
            continue
        paired[key] = {}
        for metric in PAIRED_METRICS:
            best = max(fills, key=lambda fill: float(values[fill][metric].double().mean()))
            difference = metrics[metric].double() - values[best][metric].double()
            paired[key][metric] = {"against": best, **summarize(difference)}
    return paired


def task_datamodule(
    data: FaceDataModule, task: MaskTask, frame: FaceFrame | None = None
) -> FaceDataModule:
    """The configured data at the task's size and crop (or ``frame``'s crop), serving the task's
    masks at ``test``."""
    names = set(inspect.signature(FaceDataModule.__init__).parameters) - {"self"}
    kwargs = {key: value for key, value in dict(data.hparams).items() if key in names}
    kwargs.update(
        image_size=task.image_size,
        test_mask=task.spec,
        mask_seed=task.seed,
        landmarks="off",
    )
    if task.crop_size is not None:
        kwargs["crop_size"] = task.crop_size
    if frame is not None:
        kwargs.update(frame.settings())
    return FaceDataModule(**kwargs)


def checkpoints_frame(
    task: MaskTask, asked: FaceFrame, methods: Sequence[Method], use_checkpoint_frame: bool
) -> FaceFrame | None:
    """None when every checkpoint of the task trained on the protocol's frame ``asked`` (or did
    not record its frame); else, with ``use_checkpoint_frame``, the checkpoints' one frame. Any
    other case is a ``ValueError`` naming the frames."""
    learned = [m for m in methods if m.frame is not None and m.frame != asked]
    if not learned:
        return None
    first = learned[0]
    if not use_checkpoint_frame:
        raise ValueError(
            f"{first.name} checkpoint {first.checkpoint} was trained on faces of {first.frame}; "
            f"protocol {task.protocol!r} ({task.mask}) asks for faces of {asked}: evaluate it with "
            "a protocol of its frame, or pass --checkpoint_frame true to evaluate at its frame"
        )
    frames = {m.frame for m in methods if m.frame is not None}
    if len(frames) > 1:
        raise ValueError(
            f"the checkpoints at {task.image_size} px were trained on different frames "
            f"({'; '.join(sorted(map(str, frames)))}): evaluate them in separate runs"
        )
    if first.frame.source != asked.source:
        raise ValueError(
            f"{first.name} checkpoint {first.checkpoint} was trained on faces of {first.frame}, "
            f"which cannot be cut from the protocol's data ({asked}): use a protocol of its source"
        )
    return first.frame


def training_overlap(method: Method, names: Sequence[str], split: str, allow: bool) -> int | None:
    """How many of the evaluated faces ``names`` the method's checkpoint trained on (None: unknown);
    a ``ValueError`` naming them when there are any and ``allow`` is off."""
    if method.checkpoint is None or method.training_images is None:
        return None
    overlap = method.training_images.overlap(names)
    if overlap and not allow:
        shown = ", ".join(overlap[:3]) + (", ..." if len(overlap) > 3 else "")
        raise ValueError(
            f"{method.name} checkpoint {method.checkpoint} trained on {len(overlap)} of the "
            f"{len(names)} evaluated faces of split {split!r} ({shown}; its training set: "
            f"{method.training_images.description}): evaluate on faces it never saw (CelebA's "
            "test partition: configs/eval/*-celeba*.yaml), or pass --allow_train_overlap true "
            "for a diagnostic"
        )
    return len(overlap)


@dataclass
class TaskResult:
    task: MaskTask
    n: int
    mask_hash: str
    metrics: dict[str, dict[str, dict[str, float]]]  # method key -> metric -> summary
    grid: list[tuple[str, Tensor]]  # (label, (k,3,S,S) in [0,1])
    seconds_per_face: dict[str, float]  # method key -> wall seconds of its fills / faces
    # method key -> metric -> per-face difference against the best classical fill (summary)
    paired: dict[str, dict[str, dict[str, float | str]]]


def run_task(
    task: MaskTask,
    datamodule: FaceDataModule,
    methods: Sequence[Method],
    device: torch.device,
    limit: int | None,
    batch_size: int,
    grid_samples: int,
    landmark_net: torch.nn.Module | None = None,
    perceptual: PerceptualNetworks | None = None,
) -> TaskResult:
    """Evaluate ``methods`` on the first ``limit`` faces of the task's split, or of the
    protocol's sample of it (all when None); ``perceptual`` adds LPIPS and/or FID with its
    networks."""
    dataset = datamodule.dataset(task.split)
    evaluated = task.indices(len(dataset), limit)
    n = len(evaluated)
    if n < 1:
        raise ValueError(
            f"nothing to evaluate: split {task.split!r} has {len(dataset)} faces, limit {limit}"
        )
    expected_hash = task_mask_hash(task, evaluated, device)
    metrics = {method_key(m): DefaultMetrics().to(device) for m in methods}
    extra = {method_key(m): perceptual.metrics() for m in methods} if perceptual else {}
    nme: dict[str, list[Tensor]] = {method_key(m): [] for m in methods}
    served_masks: list[Tensor] = []
    seconds = {method_key(m): 0.0 for m in methods}
    grid: dict[str, list[Tensor]] = {"original": [], "masked": []} | {
        method_key(m): [] for m in methods
    }
    for method in methods:
        method.reset()
    progress = tqdm(total=n, desc=f"{task.protocol}/{task.mask}", unit="face", leave=False)
    for start in range(0, n, batch_size):
        indices = evaluated[start : start + batch_size]
        batch = {key: value.to(device) for key, value in dataset.__getitems__(indices).items()}
        batch = datamodule.prepare_batch(batch, "test")
        image, mask, index = batch[IMAGE], batch[MASK], batch[INDEX]
        served_masks.append(mask.detach().to("cpu", torch.bool))
        damaged = image * (1.0 - mask)
        reference = None
        if landmark_net is not None:
            with torch.no_grad():
                reference = landmark_net(image)[1]  # (B, 68, 2)
        keep = max(0, min(grid_samples - start, len(indices)))
        if keep:
            grid["original"].append(to_unit(image[:keep]))
            grid["masked"].append(
                to_unit(composite(torch.ones_like(image[:keep]), image[:keep], mask[:keep]))
            )
        for method in methods:
            key = method_key(method)
            synchronize(device)
            started = time.perf_counter()
            raw, filled = method.outputs(image if method.oracle else damaged, mask, index)
            synchronize(device)
            seconds[key] += time.perf_counter() - started
            result = composite(filled, image, mask)
            metrics[key].update(result, image, mask, raw=None if raw is filled else raw)
            if extra:
                extra[key].update(result, image)
            if reference is not None:
                with torch.no_grad():
                    nme[key].append(landmark_nme(landmark_net(result)[1], reference))
            if keep:
                grid[key].append(to_unit(result[:keep]))
        progress.update(len(indices))
    progress.close()
    served_hash = mask_hash(torch.cat(served_masks))
    if served_hash != expected_hash:
        raise ValueError(
            f"{task.protocol}/{task.mask}: the DataModule served masks with hash {served_hash[:16]}... "
            f"but the protocol's masks hash to {expected_hash[:16]}...; check mask_seed and test_mask"
        )
    scored = [m for m in methods if not m.oracle]  # oracles are diagnostics: never paired
    fills = [method_key(m) for m in scored if m.name in BASELINE_NAMES and m.checkpoint is None]
    paired = paired_against_fills(
        {method_key(m): metrics[method_key(m)].per_sample() for m in scored}, fills
    )
    summaries = {}
    for method in methods:
        key = method_key(method)
        summaries[key] = metrics[key].summary() | (extra[key].summary() if extra else {})
        if nme[key]:
            summaries[key]["nme"] = summarize(torch.cat(nme[key]))
    rows = [(label, torch.cat(images)) for label, images in grid.items() if images]
    per_face = {key: value / n for key, value in seconds.items()}
    return TaskResult(task, n, served_hash, summaries, rows, per_face, paired)


def grid_labels(rows: list[tuple[str, Tensor]]) -> list[tuple[str, Tensor]]:
    """Method keys to short row labels: the name, numbered when a name repeats."""
    names = [key.split(":", 1)[0] for key, _ in rows]
    labels = []
    for position, ((_, images), name) in enumerate(zip(rows, names, strict=True)):
        repeats = names.count(name) > 1
        labels.append((f"{name} {names[: position + 1].count(name)}" if repeats else name, images))
    return labels


def method_key(method: Method) -> str:
    return method.name if method.checkpoint is None else f"{method.name}:{method.checkpoint}"
