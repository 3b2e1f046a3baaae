"""Shipped weights: a module's inference weights as fp16 safetensors, written without pickle.

A file holds the tensors of one module (fp16 where they are floating point) and, as
metadata, ``class_path`` (the class to build), ``init_args`` (its constructor arguments,
JSON) and ``data`` (the training run's DataModule settings, JSON: what it was trained on). :func:`export_weights` writes one from a Lightning checkpoint of any class that exports
weights (its ``exported``: what inference needs);
:func:`faceinpaint.lit.loading.load_weights` builds the module again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save
from torch import Tensor

from faceinpaint.io import atomic_write, plain
from faceinpaint.lit.loading import DATA_KEY, read_lightning_checkpoint
from faceinpaint.lit.method import DeclaredModule, import_class


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
    """Write the inference weights of a Lightning checkpoint whose class exports some (its
    ``exported``: the VAE-GAN's generator, the DCGAN's G and D, the latent encoder, ...)."""
    checkpoint = read_lightning_checkpoint(checkpoint_path)
    class_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    cls = import_class(class_path) if class_path is not None else None
    if cls is None or not issubclass(cls, DeclaredModule) or not cls.export_prefixes:
        raise ValueError(
            f"{str(checkpoint_path)!r} holds {class_path!r}, which exports no weights (a class "
            "exports what its export_prefixes name: faceinpaint.lit.method.DeclaredModule)"
        )
    shipped_class, init_args, state = cls.exported(checkpoint)
    data = checkpoint.get("datamodule_hyper_parameters")
    if data is not None:  # without LightningCLI's private entries (its _instantiator)
        data = {key: value for key, value in data.items() if not str(key).startswith("_")}
    return save_weights(state, shipped_class, plain(init_args, strict=True), path, data)
