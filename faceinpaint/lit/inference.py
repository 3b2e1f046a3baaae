"""The inpainting module of a checkpoint or shipped weights file, built for inference.

Above :mod:`faceinpaint.lit.loading` (which reads the files) and the modules it builds, so that
neither imports the other back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from faceinpaint.lit.dcgan import DCGANModule
from faceinpaint.lit.loading import (
    expect_kind,
    is_weights_file,
    load_weights,
    public_hparams,
    read_checkpoint,
    read_lightning_checkpoint,
)
from faceinpaint.lit.vaegan import VAEGANModule

VAEGAN_INFERENCE_SETTINGS = {"poisson_iterations"}


def load_vaegan(
    path: str | Path, checkpoint: dict[str, Any], **overrides: Any
) -> pl.LightningModule:
    """The VAE-GAN of ``path`` for inference: built from the checkpoint's hyperparameters and
    its generator loaded strictly; the training-only parts (VGG, landmark network) are not
    built, so no download and no landmark file is needed, and the critics keep their initial
    weights. ``overrides`` replace inference settings (``poisson_iterations``)."""
    unknown = sorted(set(overrides) - VAEGAN_INFERENCE_SETTINGS)
    if unknown:
        raise ValueError(
            f"a VAE-GAN takes only {sorted(VAEGAN_INFERENCE_SETTINGS)} at inference, got {unknown}"
        )
    if is_weights_file(path):
        return load_weights(path, feat_weight=0.0, landmark_weight=0.0, **overrides)
    inference = {"feat_weight": 0.0, "landmark_weight": 0.0} | overrides
    model = VAEGANModule(**(public_hparams(checkpoint) | inference))
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
    if is_weights_file(path):
        return load_weights(path, **overrides)
    read_lightning_checkpoint(path)  # the refusals and their messages of an unsafe or bad file
    return DCGANModule.load_from_checkpoint(
        path, map_location="cpu", weights_only=True, **overrides
    ).eval()


def load_inpainter(
    path: str | Path, checkpoint: dict[str, Any] | None = None, **overrides: Any
) -> pl.LightningModule:
    """The VAE-GAN or DCGAN module of ``path`` (either format) for inference; ``overrides``
    replace a DCGAN's search settings or a VAE-GAN's ``poisson_iterations``. ``ValueError``
    for other kinds."""
    checkpoint = read_checkpoint(path) if checkpoint is None else checkpoint
    kind = expect_kind(checkpoint, path, ["vaegan", "dcgan"])
    if kind == "vaegan":
        return load_vaegan(path, checkpoint, **overrides)
    return load_dcgan(path, **overrides)
