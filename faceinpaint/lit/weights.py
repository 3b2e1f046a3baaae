"""Shipped weights: a module's inference weights as fp16 safetensors, rebuilt without pickle.

A file holds the tensors of one module (fp16 where they are floating point) and, as
metadata, ``class_path`` (the class to build) and ``init_args`` (its constructor arguments,
JSON). :func:`export_weights` writes one from a Lightning checkpoint of the DCGAN, the
VAE-GAN or the latent encoder, keeping what inference needs; :func:`load_weights` builds the
module again. :func:`read_weights_checkpoint` presents such a file like a Lightning checkpoint
dict (``hyper_parameters`` with ``_class_path``, ``state_dict``), so the evaluation runner
reads both kinds alike.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import Tensor, nn

from faceinpaint.io import atomic_write

SUFFIX = ".safetensors"
DCGAN_CLASS = "faceinpaint.lit.dcgan.DCGANInpainter"
VAEGAN_CLASS = "faceinpaint.lit.vaegan.VAEGANInpainting"
ENCODER_MODULE_CLASS = "faceinpaint.lit.encoder.LatentEncoderModule"
ENCODER_CLASS = "faceinpaint.models.latent_encoder.LatentEncoder"
# What inference reads of each Lightning module: class of the shipped module, state prefixes,
# constructor arguments replaced (the VAE-GAN's training-only VGG and landmark network off).
_EXPORTS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    DCGAN_CLASS: (DCGAN_CLASS, ("generator.", "discriminator."), {}),
    VAEGAN_CLASS: (
        VAEGAN_CLASS,
        ("generator.",),  # the critics judge training only
        {"feat_weight": 0.0, "landmark_weight": 0.0, "landmark_checkpoint": None},
    ),
    ENCODER_MODULE_CLASS: (ENCODER_CLASS, ("encoder.",), {}),
}


def is_weights_file(path: str | Path) -> bool:
    return str(path).endswith(SUFFIX)


def save_weights(
    state: dict[str, Tensor], class_path: str, init_args: dict[str, Any], path: str | Path
) -> Path:
    """Write ``state`` (floating tensors as fp16) with its class and arguments, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: (value.detach().half() if value.is_floating_point() else value.detach()).contiguous()
        for name, value in state.items()
    }
    metadata = {"class_path": class_path, "init_args": json.dumps(init_args, sort_keys=True)}
    with atomic_write(path, "wb") as handle:  # the umask's mode, as open() would give
        handle.write(save(tensors, metadata=metadata))
    return path


def read_weights(path: str | Path) -> tuple[str, dict[str, Any], dict[str, Tensor]]:
    """``(class_path, init_args, state)`` of a weights file, floating tensors as float32."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    if "class_path" not in metadata or "init_args" not in metadata:
        raise ValueError(
            f"{str(path)!r} has no class_path / init_args metadata; expected a file written "
            "by faceinpaint.lit.weights.save_weights"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return metadata["class_path"], json.loads(metadata["init_args"]), state


def _import(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    if not module.startswith("faceinpaint."):
        raise ValueError(f"weights name class {class_path!r}; only faceinpaint classes are built")
    return getattr(importlib.import_module(module), name)


def load_weights(path: str | Path, **overrides: Any) -> nn.Module:
    """The module of a weights file, in eval mode; ``overrides`` replace constructor arguments.

    Every stored tensor must fit the module, and every parameter and buffer under the stored
    top-level names must be in the file; other submodules keep their initial weights (the
    VAE-GAN file holds its generator only: critics and VGG serve training alone).
    """
    class_path, init_args, state = read_weights(path)
    module = _import(class_path)(**(init_args | overrides))
    missing, unexpected = module.load_state_dict(state, strict=False)
    prefixes = {name.split(".", 1)[0] for name in state}
    missing = [name for name in missing if name.split(".", 1)[0] in prefixes]
    if missing or unexpected:
        raise ValueError(
            f"{str(path)!r} does not fit {class_path}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return module.eval()


def read_weights_checkpoint(path: str | Path) -> dict[str, Any]:
    """A weights file as a Lightning-style checkpoint dict (``hyper_parameters`` with
    ``_class_path``, ``state_dict``), for readers of checkpoints."""
    class_path, init_args, state = read_weights(path)
    return {"hyper_parameters": init_args | {"_class_path": class_path}, "state_dict": state}


def export_weights(checkpoint_path: str | Path, path: str | Path) -> Path:
    """Write the inference weights of a DCGAN, VAE-GAN or latent-encoder Lightning checkpoint."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    class_path = hparams.pop("_class_path", None)
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
    return save_weights(state, shipped_class, _plain(init_args), path)


def _plain(value: Any) -> Any:
    """JSON-ready copy of constructor arguments (tuples to lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"constructor argument {value!r} cannot be stored as JSON")
