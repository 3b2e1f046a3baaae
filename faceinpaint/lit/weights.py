"""Shipped weights: a module's inference weights as fp16 safetensors, written without pickle.

A file holds the tensors of one module (fp16 where they are floating point) and, as
metadata, ``class_path`` (the class to build), ``init_args`` (its constructor arguments,
JSON) and ``data`` (the training run's DataModule settings, JSON: what it was trained on). :func:`export_weights` writes one from a Lightning checkpoint of the DCGAN, the
VAE-GAN or the latent encoder, keeping what inference needs;
:func:`faceinpaint.lit.loading.load_weights` builds the module again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save
from torch import Tensor

from faceinpaint.io import atomic_write, plain
from faceinpaint.lit.loading import (
    DATA_KEY,
    DCGAN_CLASS,
    ENCODER_MODULE_CLASS,
    VAEGAN_CLASS,
    import_class,
    read_lightning_checkpoint,
    resolve_class_path,
)

ENCODER_CLASS = "faceinpaint.models.latent_encoder.LatentEncoder"
# What inference reads of each Lightning module: class of the shipped module, state prefixes,
# constructor arguments replaced (the VAE-GAN's training-only VGG and landmark network off).
_EXPORTS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    DCGAN_CLASS: (DCGAN_CLASS, ("generator.", "discriminator."), {}),
    VAEGAN_CLASS: (
        VAEGAN_CLASS,
        ("generator.",),  # the critics judge training only
        {"weights.feat": 0.0, "weights.landmark": 0.0, "landmark_checkpoint": None},
    ),
    ENCODER_MODULE_CLASS: (ENCODER_CLASS, ("encoder.",), {}),
}


def save_weights(
    state: dict[str, Tensor],
    class_path: str,
    init_args: dict[str, Any],
    path: str | Path,
    data: dict[str, Any] | None = None,
) -> Path:
    """Write ``state`` (floating tensors as fp16) with its class and arguments and, when
    known, the training run's DataModule settings ``data``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: (value.detach().half() if value.is_floating_point() else value.detach()).contiguous()
        for name, value in state.items()
    }
    metadata = {"class_path": class_path, "init_args": json.dumps(init_args, sort_keys=True)}
    if data is not None:
        metadata[DATA_KEY] = json.dumps(plain(data), sort_keys=True)
    with atomic_write(path, "wb") as handle:  # the umask's mode, as open() would give
        handle.write(save(tensors, metadata=metadata))
    return path


def export_weights(checkpoint_path: str | Path, path: str | Path) -> Path:
    """Write the inference weights of a DCGAN, VAE-GAN or latent-encoder Lightning checkpoint."""
    checkpoint = read_lightning_checkpoint(checkpoint_path)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    class_path = hparams.pop("_class_path", None)
    class_path = resolve_class_path(class_path) if class_path is not None else None
    if class_path not in _EXPORTS:
        raise ValueError(
            f"{str(checkpoint_path)!r} holds {class_path!r}; expected one of {sorted(_EXPORTS)}"
        )
    shipped_class, prefixes, replaced = _EXPORTS[class_path]
    init_args = {k: v for k, v in hparams.items() if not k.startswith("_")} | replaced
    state = {
        name: value for name, value in checkpoint["state_dict"].items() if name.startswith(prefixes)
    }
    if shipped_class == ENCODER_CLASS:
        init_args = checkpoint["encoder_config"]
        state = {name[len("encoder.") :]: value for name, value in state.items()}
    else:
        init_args = import_class(class_path).current_hparams(init_args)
    data = checkpoint.get("datamodule_hyper_parameters")
    return save_weights(state, shipped_class, plain(init_args, strict=True), path, data)
