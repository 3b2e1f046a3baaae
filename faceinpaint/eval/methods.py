"""Every way to fill holes as a :class:`Method`: any registered method's checkpoint (one adapter
for all: what it is comes from its class), a classical fill, the nearest training face.

Every method answers ``fill(damaged, mask, index) -> (B,3,H,W)`` composited result, seeded by
``index``; what each checkpoint trained on (frame, images, landmark network) travels with it so
the runner can check it against the task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from faceinpaint.batch import IMAGE
from faceinpaint.data.datamodule import FaceDataModule, checkpoint_training_images
from faceinpaint.data.datamodule import checkpoint_frame as recorded_frame
from faceinpaint.data.provenance import FaceFrame, ImageSet
from faceinpaint.lit.inference import expect_kind
from faceinpaint.lit.loading import public_hparams, read_checkpoint
from faceinpaint.lit.wandb_run import CHECKPOINT_KEY
from faceinpaint.ops.fills import (
    BASELINES,
    FILLS_WITHOUT_BANK,
    check_fill_names,
    nearest_neighbour_fill,
)

BASELINE_NAMES = (*BASELINES, "nn")
# every table's classical rows: the fills of FILLS_WITHOUT_BANK and nearest neighbour
DEFAULT_BASELINES = (*FILLS_WITHOUT_BANK[:4], "nn", *FILLS_WITHOUT_BANK[4:])


@dataclass
class Method:
    """A way to fill holes: ``fill(damaged, mask, index) -> composited result``, all on one device.

    ``fill`` is the method's ``inpaint`` (every method answers it alike: a checkpoint's
    Lightning module, the latent search, each classical fill); ``image_size`` None means any size.
    An ``oracle`` is a diagnostic, not a method: ``fill`` gets the original image, hole
    included (its result in the hole bounds what the model can reach, not what it does).
    A checkpoint's method carries what it trained on: ``frame`` and ``training_images`` (None
    when unknown, ``provenance`` says why), and the ``landmark_checkpoint`` it runs, if any.
    """

    name: str
    fill: Callable[[Tensor, Tensor, Tensor], Tensor]
    image_size: int | None = None
    checkpoint: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    oracle: bool = False
    reset: Callable[[], None] = lambda: None  # called before each task (clears its history)
    frame: FaceFrame | None = None
    training_images: ImageSet | None = None
    provenance: str = ""
    landmark_checkpoint: str | None = None
    wandb_run: dict[str, Any] | None = None  # the wandb run that trained the checkpoint
    history: list[Tensor] = field(default_factory=list)  # (K,B,N) search losses, first batch
    # ``(raw output, result)`` of a method whose output is more than its fill of the hole (a
    # network's whole image before compositing); None: the result is all it outputs
    parts: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]] | None = None
    settings: tuple[str, ...] = ()  # the inference settings a checkpoint's class takes

    def __call__(self, damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        with torch.no_grad():  # a search turns autograd on where it needs it
            return self.fill(damaged, mask, index).detach()

    def outputs(self, damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(raw output, result)``, each (B,3,S,S); the same tensor twice when the method
        outputs nothing but its result."""
        if self.parts is None:
            result = self(damaged, mask, index)
            return result, result
        with torch.no_grad():
            raw, result = self.parts(damaged, mask, index)
        return raw.detach(), result.detach()


@dataclass(frozen=True)
class CheckpointSpec:
    """One ``--checkpoints`` entry: a checkpoint or weights file of any registered method and
    the inference settings that replace its own (names of its class's ``inference_settings``,
    e.g. ``{candidates: 4, iterations: 10}`` for a DCGAN)."""

    path: str
    overrides: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None  # the kind it must hold (``--vaegan`` / ``--dcgan``); None: any

    @classmethod
    def parse(cls, value: str | dict[str, Any] | CheckpointSpec) -> CheckpointSpec:
        """A path, or ``{path: ..., overrides: {...}}``."""
        if isinstance(value, CheckpointSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, dict) or "path" not in value or set(value) - {"path", "overrides"}:
            raise ValueError(
                f"a --checkpoints entry is a path or {{path: ..., overrides: {{...}}}}, got {value!r}"
            )
        overrides = value.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ValueError(f"overrides of {value['path']!r} must be a mapping, got {overrides!r}")
        return cls(str(value["path"]), dict(overrides))


def checkpoint_method(
    spec: CheckpointSpec,
    device: torch.device,
    oracle: bool = False,
    shared: dict[str, Any] | None = None,
) -> Method:
    """The method of a checkpoint of any registered class (its ``for_inference``), named by its
    ``method_name`` (``vaegan+poisson``, ``dcgan+encoder``, ...). ``shared`` overrides apply
    where the class takes them (``inference_settings``), the checkpoint's own ones win. With
    ``oracle``: ``<kind>-oracle``, the method's closest output to the whole original (its
    ``reconstruct``), built with the overrides its ``oracle_settings`` name."""
    checkpoint = read_checkpoint(spec.path)
    cls = expect_kind(checkpoint, spec.path, None if spec.kind is None else [spec.kind])
    taken = {k: v for k, v in (shared or {}).items() if k in cls.inference_settings}
    overrides = taken | spec.overrides
    if oracle:
        overrides = {k: v for k, v in overrides.items() if k in cls.oracle_settings}
    model = cls.for_inference(public_hparams(checkpoint), checkpoint["state_dict"], **overrides)
    model = model.to(device)
    if not oracle:
        model.check_ready()
    history: list[Tensor] = []

    def parts(damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        if history:
            return model.inpaint_parts(damaged, mask, index)
        # the first batch's loss curves (an iterative method's), for the plot
        raw, result, curves = model.trace(damaged, mask, index)
        if curves is not None:
            history.append(curves.cpu())
        return raw, result

    def reconstruct(image: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return model.reconstruct(image, index)

    training_images, provenance = checkpoint_training_images(checkpoint)
    return Method(
        name=f"{cls.kind}-oracle" if oracle else model.method_name(),
        fill=reconstruct
        if oracle
        else (lambda damaged, mask, index: parts(damaged, mask, index)[1]),
        parts=None if oracle else parts,
        oracle=oracle,
        image_size=int(model.hparams.image_size),
        checkpoint=spec.path,
        config=public_hparams(checkpoint) | overrides,
        frame=recorded_frame(checkpoint),
        training_images=training_images,
        provenance=provenance,
        landmark_checkpoint=None if oracle else model.landmark_checkpoint_in_use(),
        reset=history.clear,
        wandb_run=checkpoint.get(CHECKPOINT_KEY),
        history=history,
        settings=cls.inference_settings,
    )


def distinct_rows(methods: list[Method]) -> list[Method]:
    """``methods`` with one row name each, before any face is scored.

    An oracle repeated with the same checkpoint and settings (the file listed twice with
    settings the oracle does not take, e.g. pasted and ``poisson_iterations``) is scored once.
    Checkpoint rows that share a name (two files of one method with the same settings) are
    named ``<name>@<file stem>``; a checkpoint listed twice with the same settings, or two
    files of the same stem, is an error."""
    kept: list[Method] = []
    seen: set[tuple[str, str | None, str]] = set()
    for method in methods:
        key = (method.name, method.checkpoint, repr(sorted(method.config.items())))
        if key in seen:
            if method.oracle:
                continue
            raise ValueError(
                f"checkpoint {method.checkpoint!r} is listed twice with the same settings "
                f"(row {method.name!r})"
            )
        seen.add(key)
        kept.append(method)
    shared = Counter(method.name for method in kept)
    named = [
        replace(method, name=f"{method.name}@{Path(method.checkpoint).stem}")
        if shared[method.name] > 1 and method.checkpoint
        else method
        for method in kept
    ]
    clashes = sorted(name for name, count in Counter(m.name for m in named).items() if count > 1)
    if clashes:
        raise ValueError(
            f"rows {clashes} would share a name: give the checkpoint files distinct names"
        )
    return named


def baseline_method(name: str) -> Method:
    check_fill_names([name])
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
