"""One adapter per method: a checkpoint's Lightning module or a classical fill as a :class:`Method`.

Every method answers ``fill(damaged, mask, index) -> (B,3,H,W)`` composited result, seeded by
``index``; what each checkpoint trained on (frame, images, landmark network) travels with it so
the runner can check it against the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor

from faceinpaint.batch import IMAGE
from faceinpaint.data.datamodule import FaceDataModule, checkpoint_training_images
from faceinpaint.data.datamodule import checkpoint_frame as recorded_frame
from faceinpaint.data.provenance import FaceFrame, ImageSet
from faceinpaint.lit.inference import load_dcgan, load_vaegan
from faceinpaint.lit.loading import expect_kind, public_hparams, read_checkpoint
from faceinpaint.lit.wandb_run import CHECKPOINT_KEY
from faceinpaint.ops.fills import BASELINES, check_fill_names, nearest_neighbour_fill

BASELINE_NAMES = (*BASELINES, "nn")
DEFAULT_BASELINES = ("mean", "harmonic", "telea", "ns", "nn")


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
    reset: Callable[[], None] = lambda: None  # called before each task (clears DCGAN history)
    frame: FaceFrame | None = None
    training_images: ImageSet | None = None
    provenance: str = ""
    landmark_checkpoint: str | None = None
    wandb_run: dict[str, Any] | None = None  # the wandb run that trained the checkpoint
    history: list[Tensor] = field(default_factory=list)  # (K,B,N) search losses, first batch
    # ``(raw output, result)`` of a method whose output is more than its fill of the hole (a
    # network's whole image before compositing); None: the result is all it outputs
    parts: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]] | None = None

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


def vaegan_method(
    path: str, device: torch.device, oracle: bool = False, poisson_iterations: int | None = None
) -> Method:
    """The VAE-GAN of ``path``; with ``oracle``, its reconstruction of the whole original
    (no hole, z = mu): how well the encoder-decoder can reproduce the hole at all.
    ``poisson_iterations`` (not None) replaces the checkpoint's: > 0 Poisson-blends the output
    into the known pixels instead of pasting it, as the paper does (rows ``vaegan+poisson``)."""
    if poisson_iterations is not None and poisson_iterations < 0:
        raise ValueError(f"vaegan_poisson_iterations must be >= 0, got {poisson_iterations}")
    checkpoint = read_checkpoint(path)
    expect_kind(checkpoint, path, ["vaegan"])
    overrides = {} if poisson_iterations is None else {"poisson_iterations": poisson_iterations}
    model = load_vaegan(path, checkpoint, **overrides).to(device)

    def reconstruct(image: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return model.inpaint_parts(image, torch.zeros_like(mask), index=index)[1]

    def parts(damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        _, output, result = model.inpaint_parts(damaged, mask, index=index)
        return output, result

    blended = model.hparams.poisson_iterations > 0
    training_images, provenance = checkpoint_training_images(checkpoint)
    return Method(
        name="vaegan-oracle" if oracle else ("vaegan+poisson" if blended else "vaegan"),
        fill=reconstruct if oracle else model.inpaint,
        parts=None if oracle else parts,
        image_size=int(model.hparams.image_size),
        checkpoint=str(path),
        config=public_hparams(checkpoint) | ({} if oracle else overrides),
        oracle=oracle,
        frame=recorded_frame(checkpoint),
        training_images=training_images,
        provenance=provenance,
        wandb_run=checkpoint.get(CHECKPOINT_KEY),
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
    holdout: float | None = None,
) -> Method:
    """The latent search of the DCGAN in ``path``; arguments that are not None replace the
    checkpoint's search settings. The method is named ``dcgan``, with ``+encoder`` when the search
    starts from a latent encoder's estimate (``encoder``: one trained for this generator),
    ``+landmark`` when the landmark term is on, ``+holdout`` when it keeps each candidate's
    iterate by a held-out share of the context (``search_holdout``) and ``+poisson`` when the
    result is Poisson-blended, so several settings can share one table. With ``oracle``: ``dcgan-oracle``,
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
        "search_holdout": None if oracle else holdout,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    model = load_dcgan(path, **overrides).to(device)
    model.landmark_term()  # a missing landmark checkpoint fails here, before any search

    history: list[Tensor] = []

    def parts(damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """(G(z) of the best candidate, the result)."""
        # the first batch's loss curves, for the search plot; from the same starts as the rest
        result = model.search(damaged, mask, index, record_history=not history)
        if result.history is not None:
            history.append(result.history.cpu())
        return result.generated, result.inpainted

    def fill(damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return parts(damaged, mask, index)[1]

    def project(image: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        return model.latent_search().project(image, index).generated

    landmark_on = model.hparams.landmark_weight > 0
    name = "dcgan"
    name += "+encoder" if model.hparams.encoder_checkpoint is not None else ""
    name += "+landmark" if landmark_on else ""
    name += "+holdout" if model.hparams.search_holdout > 0 else ""
    name += "+poisson" if model.hparams.poisson_iterations > 0 else ""
    if oracle:
        name = "dcgan-oracle"
        overrides = {k: v for k, v in overrides.items() if k in ("num_candidates", "iterations")}
    training_images, provenance = checkpoint_training_images(checkpoint)
    network_term = landmark_on and model.hparams.landmark_loss == "network" and not oracle
    return Method(
        name=name,
        fill=project if oracle else fill,
        parts=None if oracle else parts,
        oracle=oracle,
        image_size=int(model.hparams.image_size),
        checkpoint=str(path),
        config=public_hparams(checkpoint) | overrides,
        frame=recorded_frame(checkpoint),
        training_images=training_images,
        provenance=provenance,
        landmark_checkpoint=model.hparams.landmark_checkpoint if network_term else None,
        reset=history.clear,
        wandb_run=checkpoint.get(CHECKPOINT_KEY),
        history=history,
    )


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
