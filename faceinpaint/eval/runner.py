"""``faceinpaint eval``: every method on every mask type of a protocol, on identical masks.

For each task of the protocol (mask type x image size) the split's first ``n`` faces are served
by the shared DataModule (at the task's size and crop, masks from the protocol's seed), each
method fills the **damaged** faces (hole pixels zeroed: no method can read the hole), and
:class:`~faceinpaint.eval.metrics.InpaintingMetrics` scores the composited results on the
batch's device. Methods: VAE-GAN and DCGAN latent-search checkpoints, and the classical fills
(mean, harmonic, Telea, Navier-Stokes, nearest neighbour from the train split).

Outputs in ``out``: ``results.jsonl`` (one row per method x checkpoint x protocol x mask type,
appended; rows of the same task must carry the same mask hash), ``<protocol>.md`` (the table of
this run, with its command, data, hardware, date and revision) and ``<protocol>-<mask>.png``
(original / masked / one row per method).
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import math
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from tqdm.auto import tqdm

from faceinpaint.batch import IMAGE, INDEX, MASK, composite, to_unit
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.masks import mask_hash
from faceinpaint.eval.baselines import BASELINES, nearest_neighbour_fill
from faceinpaint.eval.bench import synchronize
from faceinpaint.eval.metrics import InpaintingMetrics, summary_statistics
from faceinpaint.eval.protocols import (
    MaskTask,
    Protocol,
    as_protocol,
    check_mask_hashes,
    task_mask_hash,
)
from faceinpaint.eval.report import (
    grid_image,
    log_wandb_table,
    markdown_report,
    read_jsonl,
    save_image_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)
from faceinpaint.lit.weights import is_weights_file, load_weights, read_weights_checkpoint
from faceinpaint.losses.landmark import landmark_nme

log = logging.getLogger(__name__)

BASELINE_NAMES = (*BASELINES, "nn")
DEFAULT_BASELINES = ("mean", "harmonic", "telea", "ns", "nn")
RESULTS_FILE = "results.jsonl"

VAEGAN_CLASS = "faceinpaint.lit.vaegan.VAEGANInpainting"
DCGAN_CLASS = "faceinpaint.lit.dcgan.DCGANInpainter"
KIND_CLASSES = {"vaegan": VAEGAN_CLASS, "dcgan": DCGAN_CLASS}
KIND_NAMES = {"vaegan": "VAE-GAN", "dcgan": "DCGAN latent-search"}


# ----------------------------------------------------------------------------- checkpoints
def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint file as a dict on the CPU; a clear error when it is missing or not one.

    Lightning checkpoints pickle their hyperparameters, so this loads them in full, as
    ``load_from_checkpoint`` does: only open checkpoints you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if is_weights_file(path):
        return read_weights_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several unrelated types for a non-checkpoint file
        raise ValueError(f"{str(path)!r} is not a readable PyTorch checkpoint: {err}") from err
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint dict"
        )
    return checkpoint


def checkpoint_kind(checkpoint: dict[str, Any]) -> str:
    """``"vaegan"``, ``"dcgan"``, ``"landmarks"`` or the class path (or ``"unknown"``) it holds.

    Read from the ``_class_path`` that LightningCLI stores, else from what each module writes:
    the VAE-GAN's curriculum entry, the DCGAN's generator + discriminator, the landmark network.
    """
    hparams = checkpoint.get("hyper_parameters") or {}
    class_path = hparams.get("_class_path")
    for kind, known in KIND_CLASSES.items():
        if class_path == known:
            return kind
    if class_path:
        return str(class_path)
    state = checkpoint.get("state_dict") or {}
    if "vaegan_curriculum" in checkpoint:
        return "vaegan"
    if "landmark_net" in checkpoint:
        return "landmarks"
    prefixes = {key.split(".", 1)[0] for key in state}
    if {"generator", "discriminator"} <= prefixes and "latent_prior" in hparams:
        return "dcgan"
    return "unknown"


def expect_kind(checkpoint: dict[str, Any], path: str | Path, expected: Sequence[str]) -> str:
    """The checkpoint's kind, or ``ValueError`` naming what it is and what was expected."""
    kind = checkpoint_kind(checkpoint)
    if kind not in expected:
        wanted = " or ".join(f"{KIND_NAMES[k]} ({KIND_CLASSES[k]})" for k in expected)
        hint = {"vaegan": " (pass it with --vaegan)", "dcgan": " (pass it with --dcgan)"}
        raise ValueError(
            f"checkpoint {str(path)!r} is a {KIND_NAMES.get(kind, kind)} checkpoint, expected a "
            f"{wanted}{hint.get(kind, '') if len(expected) == 1 else ''}"
        )
    return kind


def public_hparams(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not k.startswith("_")
    }


def load_vaegan(path: str | Path, checkpoint: dict[str, Any]) -> pl.LightningModule:
    """The VAE-GAN of ``path`` for inference: the generator loaded strictly, the training-only
    parts (VGG, landmark network) not built, so no download and no landmark file is needed."""
    from faceinpaint.lit.vaegan import VAEGANInpainting

    if is_weights_file(path):
        return load_weights(path, feat_weight=0.0, landmark_weight=0.0)
    model = VAEGANInpainting.load_from_checkpoint(
        path, map_location="cpu", strict=False, feat_weight=0.0, landmark_weight=0.0
    )
    prefix = "generator."
    generator_state = {
        key[len(prefix) :]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    model.generator.load_state_dict(generator_state, strict=True)
    return model.eval()


def load_dcgan(path: str | Path, **overrides: Any) -> pl.LightningModule:
    """The DCGAN inpainter of ``path``; ``overrides`` replace search hyperparameters."""
    from faceinpaint.lit.dcgan import DCGANInpainter

    if is_weights_file(path):
        return load_weights(path, **overrides)
    return DCGANInpainter.load_from_checkpoint(path, map_location="cpu", **overrides).eval()


# ----------------------------------------------------------------------------- methods
@dataclass
class Method:
    """A way to fill holes: ``fill(damaged, mask, index) -> composited result``, all on one device.

    ``image_size`` None means any size; ``needs_grad`` runs ``fill`` with autograd on.
    An ``oracle`` is a diagnostic, not a method: ``fill`` gets the original image, hole
    included (its result in the hole bounds what the model can reach, not what it does).
    """

    name: str
    fill: Callable[[Tensor, Tensor, Tensor], Tensor]
    image_size: int | None = None
    checkpoint: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    needs_grad: bool = False
    reset: Callable[[], None] = lambda: None
    oracle: bool = False

    def __call__(self, damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        with torch.enable_grad() if self.needs_grad else torch.no_grad():
            return self.fill(damaged, mask, index).detach()


def vaegan_method(path: str, device: torch.device, oracle: bool = False) -> Method:
    """The VAE-GAN of ``path``; with ``oracle``, its reconstruction of the whole original
    (no hole, z = mu): how well the encoder-decoder can reproduce the hole at all."""
    checkpoint = read_checkpoint(path)
    expect_kind(checkpoint, path, ["vaegan"])
    model = load_vaegan(path, checkpoint).to(device)
    noise = torch.Generator(device=device)

    def reset() -> None:
        noise.manual_seed(model.hparams.eval_seed)

    def fill(damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return model.inpaint(damaged, mask, noise)[2]

    def reconstruct(image: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return model.inpaint(image, torch.zeros_like(mask), noise)[1]

    reset()
    return Method(
        name="vaegan-oracle" if oracle else "vaegan",
        fill=reconstruct if oracle else fill,
        image_size=int(model.hparams.image_size),
        checkpoint=str(path),
        config=public_hparams(checkpoint),
        reset=reset,
        oracle=oracle,
    )


def dcgan_method(
    path: str,
    device: torch.device,
    candidates: int | None,
    iterations: int | None,
    landmark_weight: float | None = None,
    poisson_iterations: int | None = None,
    oracle: bool = False,
    encoder: str | None = None,
) -> Method:
    """The latent search of the DCGAN in ``path``; arguments that are not None replace the
    checkpoint's search settings. The method is named ``dcgan``, with ``+encoder`` when the search
    starts from a latent encoder's estimate (``encoder``: one trained for this generator),
    ``+landmark`` when the landmark term is on and ``+poisson`` when the result is
    Poisson-blended, so several settings can share one table. With ``oracle``: ``dcgan-oracle``,
    the generator's closest image to the whole original (``LatentSearch.project``, same
    candidates and iterations)."""
    checkpoint = read_checkpoint(path)
    expect_kind(checkpoint, path, ["dcgan"])
    if landmark_weight is not None and landmark_weight < 0:
        raise ValueError(f"dcgan_landmark_weight must be >= 0, got {landmark_weight}")
    if poisson_iterations is not None and poisson_iterations < 0:
        raise ValueError(f"dcgan_poisson_iterations must be >= 0, got {poisson_iterations}")
    overrides = {
        "num_candidates": candidates,
        "iterations": iterations,
        "landmark_weight": landmark_weight,
        "poisson_iterations": poisson_iterations,
        "encoder_checkpoint": None if oracle else encoder,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    model = load_dcgan(path, **overrides).to(device)
    model.landmark_term()  # a missing landmark checkpoint fails here, before any search

    def fill(damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return model.inpaint(damaged, mask, index).inpainted

    def project(image: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return model.latent_search().project(image, index).generated

    name = "dcgan"
    name += "+encoder" if model.hparams.encoder_checkpoint is not None else ""
    name += "+landmark" if model.hparams.landmark_weight > 0 else ""
    name += "+poisson" if model.hparams.poisson_iterations > 0 else ""
    if oracle:
        name = "dcgan-oracle"
        overrides = {k: v for k, v in overrides.items() if k in ("num_candidates", "iterations")}
    return Method(
        name=name,
        fill=project if oracle else fill,
        oracle=oracle,
        image_size=int(model.hparams.image_size),
        checkpoint=str(path),
        config=public_hparams(checkpoint) | overrides,
        needs_grad=True,
    )


def baseline_method(name: str) -> Method:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected some of {list(BASELINE_NAMES)}")
    fill = BASELINES[name]
    return Method(name=name, fill=lambda damaged, mask, index: fill(damaged, mask))


def nearest_neighbour_method(bank: Tensor) -> Method:
    """The nearest-neighbour fill from ``bank`` (N,3,S,S) train faces in [-1, 1]."""
    fill = partial(nearest_neighbour_fill, bank=bank)
    return Method(
        name="nn",
        fill=lambda damaged, mask, index: fill(damaged, mask),
        image_size=int(bank.shape[-1]),
        config={"bank_size": int(bank.shape[0]), "bank_split": "train"},
    )


class NearestNeighbourBank:
    """The first ``size`` train faces at each image size, loaded once onto the device."""

    def __init__(self, size: int, device: torch.device) -> None:
        if size < 1:
            raise ValueError(f"nn_bank_size must be >= 1, got {size}")
        self.size = size
        self.device = device
        self._banks: dict[int, Tensor] = {}

    def faces(self, datamodule: FaceDataModule) -> Tensor:
        image_size = datamodule.image_size
        if image_size not in self._banks:
            if "train" not in datamodule.split_names():
                raise ValueError(
                    f"the nearest-neighbour baseline needs a 'train' split; the data has "
                    f"{datamodule.split_names()}: drop 'nn' from --baselines"
                )
            train = datamodule.dataset("train")
            batch = train.__getitems__(list(range(min(self.size, len(train)))))
            batch = {key: value.to(self.device) for key, value in batch.items()}
            self._banks[image_size] = datamodule.prepare_batch(batch, "test")[IMAGE]
        return self._banks[image_size]


# ----------------------------------------------------------------------------- provenance
def git_revision(directory: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of the package's checkout, or "unknown"."""
    directory = directory or Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def hardware(device: torch.device) -> str:
    """The evaluating device in words, e.g. "NVIDIA H100 (cuda)" or "x86_64 CPU, 2 threads"."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model} CPU, {torch.get_num_threads()} torch threads"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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


# ----------------------------------------------------------------------------- the run
def task_datamodule(data: FaceDataModule, task: MaskTask) -> FaceDataModule:
    """The configured data at the task's size and crop, serving the task's masks at ``test``."""
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
    return FaceDataModule(**kwargs)


@dataclass
class TaskResult:
    task: MaskTask
    n: int
    mask_hash: str
    metrics: dict[str, dict[str, dict[str, float]]]  # method key -> metric -> summary
    grid: list[tuple[str, Tensor]]  # (label, (k,3,S,S) in [0,1])
    seconds_per_face: dict[str, float]  # method key -> wall seconds of its fills / faces


def run_task(
    task: MaskTask,
    datamodule: FaceDataModule,
    methods: Sequence[Method],
    device: torch.device,
    limit: int | None,
    batch_size: int,
    grid_samples: int,
    landmark_net: torch.nn.Module | None = None,
) -> TaskResult:
    """Evaluate ``methods`` on the first ``limit`` faces of the task's split (all when None)."""
    dataset = datamodule.dataset(task.split)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n < 1:
        raise ValueError(
            f"nothing to evaluate: split {task.split!r} has {len(dataset)} faces, limit {limit}"
        )
    expected_hash = task_mask_hash(task, n, device)
    metrics = {method_key(m): InpaintingMetrics().to(device) for m in methods}
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
        indices = list(range(start, min(start + batch_size, n)))
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
            filled = method(image, mask, index) if method.oracle else method(damaged, mask, index)
            synchronize(device)
            seconds[key] += time.perf_counter() - started
            result = composite(filled, image, mask)
            metrics[key].update(result, image, mask)
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
    summaries = {}
    for method in methods:
        key = method_key(method)
        summaries[key] = metrics[key].summary()
        if nme[key]:
            summaries[key]["nme"] = summarize(torch.cat(nme[key]))
    rows = [(label, torch.cat(images)) for label, images in grid.items() if images]
    per_face = {key: value / n for key, value in seconds.items()}
    return TaskResult(task, n, served_hash, summaries, rows, per_face)


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


def data_source(datamodule: FaceDataModule) -> str:
    return "embedded procedural faces" if datamodule.is_synthetic else str(datamodule.root)


def data_description(rows: Sequence[dict[str, Any]], protocol: Protocol) -> str:
    """Source, split, faces per mask and the crop of each size, e.g. for the table's header."""
    if not rows:
        return "-"
    described = f"{rows[0]['data']}, split {protocol.split}, first {rows[0]['n']} faces"
    if rows[0]["config"]["data"].get("root") is None:
        return described  # the embedded faces are drawn at each size, not cropped
    crops = {}
    for row in rows:
        crops[row["image_size"]] = row["config"]["data"].get("crop_size")
    frames = ", ".join(f"{size} px from a crop of {crop} x width" for size, crop in crops.items())
    return f"{described}; {frames}"


def command_line() -> str:
    program = Path(sys.argv[0])
    if program.name == "faceinpaint" or program.parent.name == "faceinpaint":
        return shlex.join(["faceinpaint", *sys.argv[1:]])
    return shlex.join(sys.argv)


def evaluate(
    data: FaceDataModule,
    protocol: Protocol,
    vaegan: str | list[str] | None = None,
    dcgan: str | list[str] | None = None,
    baselines: str | tuple[str, ...] = DEFAULT_BASELINES,
    nn_bank_size: int = 2000,
    landmark_checkpoint: str | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    dcgan_candidates: int | None = None,
    dcgan_iterations: int | None = None,
    dcgan_landmark_weight: float | None = None,
    dcgan_poisson_iterations: int | None = None,
    dcgan_encoder: str | None = None,
    oracles: bool = False,
    skip_mismatched: bool = False,
    grid_samples: int = 8,
    device: str = "auto",
    out: str = "outputs/eval",
) -> list[dict[str, Any]]:
    """Benchmark checkpoints and classical fills on a protocol's fixed masks; write the tables.

    Args:
        protocol: the ``protocol:`` section of a configs/eval/*.yaml (name, masks, image_sizes,
            seed, split, crop_sizes). Its sizes and crops replace ``data.image_size`` / ``crop_size``.
        vaegan: VAE-GAN checkpoint(s) (``faceinpaint fit --config configs/vaegan/...``): a path
            or a list ``[a.ckpt, b.ckpt]``.
        dcgan: DCGAN latent-search checkpoint(s) (``faceinpaint fit --config configs/dcgan/...``).
        baselines: classical fills, a name or a list: mean, harmonic, telea, ns, nn (nearest
            training face); ``[]`` for none.
        nn_bank_size: train faces (the first ones) the nearest-neighbour fill searches.
        landmark_checkpoint: a landmark network checkpoint: adds the landmark NME of the result
            against the original.
        limit: evaluate the first ``limit`` faces of the split (None: all).
        batch_size: faces per batch (the DCGAN search holds batch x candidates images).
        dcgan_candidates: replaces the DCGAN checkpoints' ``num_candidates``.
        dcgan_iterations: replaces the DCGAN checkpoints' search ``iterations``.
        dcgan_landmark_weight: replaces the DCGAN checkpoints' ``landmark_weight`` (0 = no
            landmark term; > 0 needs the checkpoint's ``landmark_checkpoint`` to exist). Rows
            with the term are named ``dcgan+landmark``.
        dcgan_poisson_iterations: replaces the DCGAN checkpoints' ``poisson_iterations``
            (conjugate-gradient iterations of Poisson blending against the damaged input; 0 =
            plain composite). Blended rows get ``+poisson`` in their name.
        dcgan_encoder: a latent encoder (``faceinpaint fit --config configs/encoder/...``) of
            the DCGAN checkpoints' generator: their searches start from its latent (rows
            named ``dcgan+encoder``) instead of the checkpoints' setting.
        oracles: also add, for each checkpoint, a diagnostic row that sees the whole original
            (``vaegan-oracle``: the network's reconstruction of the unmasked face;
            ``dcgan-oracle``: the generator's closest image to it, found by the same search
            with every pixel known). Their hole figures bound what the model can reach; they
            are not inpainting results.
        skip_mismatched: a checkpoint whose image size matches none of the protocol's sizes is
            skipped with a logged reason instead of being an error (for suites over protocols).
        grid_samples: faces per image grid.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1``...
        out: folder of results.jsonl, <protocol>.md and the <protocol>-<mask>.png grids.

    Returns the result rows written by this run.
    """
    started = time.perf_counter()
    protocol = as_protocol(protocol)
    vaegan, dcgan, baselines = _as_list(vaegan), _as_list(dcgan), _as_list(baselines)
    target = resolve_device(device)
    out_dir = Path(out)
    results_path = out_dir / RESULTS_FILE
    unknown = [name for name in baselines if name not in BASELINE_NAMES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; expected some of {list(BASELINE_NAMES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    methods = [
        vaegan_method(path, target, oracle)
        for path in vaegan
        for oracle in ((False, True) if oracles else (False,))
    ]
    methods += [
        dcgan_method(
            path,
            target,
            dcgan_candidates,
            dcgan_iterations,
            dcgan_landmark_weight,
            dcgan_poisson_iterations,
            oracle,
            dcgan_encoder,
        )
        for path in dcgan
        for oracle in ((False, True) if oracles else (False,))
    ]
    tasks = protocol.tasks()
    sizes = {task.image_size for task in tasks}
    notes = []
    usable = []
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
    if oracles:
        notes.append(
            "oracle rows are diagnostics, not inpainting: they see the whole original, hole "
            "included (vaegan-oracle: the network's reconstruction of the unmasked face; "
            "dcgan-oracle: the generator's closest image to it). Their hole figures bound what "
            "the model can reach."
        )
    nn_bank = NearestNeighbourBank(nn_bank_size, target) if "nn" in baselines else None
    landmark_net = None
    if landmark_checkpoint is not None:
        from faceinpaint.landmarks.network import LandmarkNet

        landmark_net = LandmarkNet.from_checkpoint(landmark_checkpoint, map_location=target)

    if nn_bank is not None:
        notes.append(f"nn: the nearest of the first {nn_bank_size} faces of the train split")
    previous = read_jsonl(results_path)
    revision = git_revision()
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    rows: list[dict[str, Any]] = []
    for task in tasks:
        datamodule = task_datamodule(data, task)
        task_methods = [m for m in usable if m.image_size == task.image_size]
        for name in baselines:
            if name == "nn":
                task_methods.append(nearest_neighbour_method(nn_bank.faces(datamodule)))
            else:
                task_methods.append(baseline_method(name))
        n_expected = len(datamodule.dataset(task.split))
        n_expected = n_expected if limit is None else min(limit, n_expected)
        # fail before any work when the masks differ from those of earlier rows in `out`
        check_mask_hashes(
            previous
            + [
                {
                    **task.describe(),
                    "n": n_expected,
                    "method": "(this run)",
                    "mask_hash": task_mask_hash(task, n_expected, target),
                }
            ]
        )
        result = run_task(
            task, datamodule, task_methods, target, limit, batch_size, grid_samples, landmark_net
        )
        for method in task_methods:
            rows.append(
                {
                    **task.describe(),
                    "n": result.n,
                    "mask_hash": result.mask_hash,
                    "method": method.name,
                    "checkpoint": method.checkpoint,
                    "metrics": result.metrics[method_key(method)],
                    "seconds_per_face": round(result.seconds_per_face[method_key(method)], 6),
                    "git_revision": revision,
                    "date": date,
                    "device": hardware(target),
                    "data": data_source(datamodule),
                    "config": {
                        "protocol": protocol.describe(),
                        "data": _plain(dict(datamodule.hparams)),
                        "method": _plain(method.config),
                        "run": {
                            "limit": limit,
                            "batch_size": batch_size,
                            "landmark_checkpoint": landmark_checkpoint,
                        },
                    },
                }
            )
        grid = grid_image(grid_labels(result.grid))
        save_image_atomic(grid, out_dir / f"{protocol.name}-{task.mask}.png")

    check_mask_hashes(previous + rows)
    write_jsonl_atomic(previous + rows, results_path)
    provenance = {
        "command": command_line(),
        "data": data_description(rows, protocol),
        "hardware": hardware(target),
        "date": date,
        "git_revision": revision,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report = markdown_report(
        f"{protocol.name}: {', '.join(f'{s} px' for s in protocol.image_sizes)}",
        rows,
        provenance,
        notes,
    )
    write_text_atomic(report, out_dir / f"{protocol.name}.md")
    log_wandb_table(rows, key=f"eval/{protocol.name}")
    print(report)
    return rows


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses to dicts, tuples to lists, other objects to strings."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
