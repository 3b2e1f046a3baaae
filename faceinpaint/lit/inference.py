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
    public_hparams,
    read_checkpoint,
)
from faceinpaint.lit.vaegan import VAEGANModule


def load_vaegan(
    path: str | Path, checkpoint: dict[str, Any], **overrides: Any
) -> pl.LightningModule:
    """The VAE-GAN of ``path`` for inference: built from the checkpoint's hyperparameters and
    its generator loaded strictly; the training-only parts (VGG, landmark network) are not
    built, so no download and no landmark file is needed, and the critics keep their initial
    weights. ``overrides`` replace inference settings (``poisson_iterations``)."""
    return VAEGANModule.for_inference(
        public_hparams(checkpoint), checkpoint["state_dict"], **overrides
    )


def load_dcgan(path: str | Path, **overrides: Any) -> pl.LightningModule:
    """The DCGAN inpainter of ``path``; ``overrides`` replace search settings by their
    ``SearchSettings`` names (``candidates``, ``iterations`` ...) and the search's networks
    (``encoder_checkpoint``, ``landmark_*``)."""
    checkpoint = read_checkpoint(path)  # the refusals and their messages of an unsafe or bad file
    return DCGANModule.for_inference(
        public_hparams(checkpoint), checkpoint["state_dict"], **overrides
    )


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
