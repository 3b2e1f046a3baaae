"""Reading checkpoints and shipped weights, in one place: what a file holds and the class it names.

Two formats: Lightning checkpoints (``.ckpt``, read with ``torch.load(weights_only=True)``: tensors,
plain values and the classes registered with ``torch.serialization.add_safe_globals``, no code
run; one that cannot be read is an error naming it and the newest readable checkpoint beside
it) and shipped weights (``.safetensors``: fp16 tensors plus ``class_path`` / ``init_args`` /
``data`` metadata, written by :mod:`faceinpaint.lit.weights`). :func:`read_checkpoint` presents both as a
checkpoint dict; :func:`checkpoint_kind` says which model it holds. It imports no LightningModule
(they import it); :func:`faceinpaint.lit.inference.load_inpainter` builds the inpainting module
of either format for inference.

Class paths written before the modules were renamed still load: :data:`CLASS_ALIASES` maps
each former path to the current one (the shipped ``faceinpaint/assets/*.safetensors`` and
users' run configs and checkpoints carry the former names).
"""

from __future__ import annotations

import importlib
import json
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safetensors import safe_open
from torch import Tensor, nn

import faceinpaint.data.masks  # noqa: F401 (allow-lists MaskSpec for weights_only loads)
from faceinpaint.io import remove_dead_temporaries
from faceinpaint.lit.method import DeclaredModule
from faceinpaint.models.dcgan import Generator, LatentPrior
from faceinpaint.models.latent_encoder import LatentEncoder
from faceinpaint.safe_load import UntrustedCheckpointError, load_error_reason, load_without_code

VAEGAN_CLASS = "faceinpaint.lit.vaegan.VAEGANModule"
DCGAN_CLASS = "faceinpaint.lit.dcgan.DCGANModule"
LANDMARK_CLASS = "faceinpaint.lit.landmarks.LandmarkModule"
ENCODER_MODULE_CLASS = "faceinpaint.lit.encoder.LatentEncoderModule"
# Former class paths -> current ones.
CLASS_ALIASES = {
    "faceinpaint.lit.vaegan.VAEGANInpainting": VAEGAN_CLASS,
    "faceinpaint.lit.dcgan.DCGANInpainter": DCGAN_CLASS,
    "faceinpaint.lit.landmarks.LitLandmarks": LANDMARK_CLASS,
}
KIND_CLASSES = {"vaegan": VAEGAN_CLASS, "dcgan": DCGAN_CLASS}
KIND_NAMES = {"vaegan": "VAE-GAN", "dcgan": "DCGAN latent-search"}
WEIGHTS_SUFFIX = ".safetensors"
DATA_KEY = "data"  # weights metadata: the training run's DataModule settings (JSON)


def resolve_class_path(class_path: str) -> str:
    """The current class path of ``class_path`` (itself unless it is a former one)."""
    return CLASS_ALIASES.get(class_path, class_path)


def former_class(module: str, name: str) -> type:
    """The class a former name ``module.name`` stands for now: the module ``__getattr__`` of each
    renamed class's module, so configs, checkpoints and weights that name it still load."""
    current = CLASS_ALIASES.get(f"{module}.{name}")
    if current is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return import_class(current)


# ----------------------------------------------------------------------------- Lightning files
def newest_readable_checkpoint(folder: Path, besides: Path) -> Path | None:
    """The most recently written ``*.ckpt`` in ``folder`` other than ``besides`` that loads."""
    candidates = sorted(
        (p for p in folder.glob("*.ckpt") if p.resolve() != besides.resolve() and p.is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for candidate in candidates:
        try:
            load_without_code(candidate, "cpu")
        except Exception:  # noqa: BLE001 (any failure means: not a good checkpoint)
            continue
        return candidate
    return None


def read_lightning_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint file as a dict, loaded without running code; clear errors for a missing,
    unreadable (empty, truncated) or untrusted file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {str(path)!r} is a directory, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    remove_dead_temporaries(path.parent)  # what saves killed mid-way left beside it
    try:
        checkpoint = load_without_code(path, map_location)
    except UntrustedCheckpointError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        RuntimeError,
        zipfile.BadZipFile,
        OSError,
        KeyError,
        ValueError,
    ) as err:
        raise _unreadable(path, err) from err
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint dict"
        )
    return checkpoint


def _unreadable(path: Path, err: BaseException) -> ValueError:
    good = newest_readable_checkpoint(path.parent, path)
    hint = (
        f"the newest readable checkpoint beside it is {str(good)!r} (resume with --ckpt_path {good})"
        if good is not None
        else f"no other readable checkpoint in {str(path.parent)!r}"
    )
    return ValueError(
        f"checkpoint {str(path)!r} is not a readable PyTorch checkpoint ({load_error_reason(err)}; "
        f"{path.stat().st_size} bytes); {hint}"
    )


# ----------------------------------------------------------------------------- shipped weights
def is_weights_file(path: str | Path) -> bool:
    return str(path).endswith(WEIGHTS_SUFFIX)


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


def import_class(class_path: str) -> type:
    """The faceinpaint class a (possibly former) class path names."""
    class_path = resolve_class_path(class_path)
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
    module_class = import_class(class_path)
    arguments = init_args | overrides
    if issubclass(module_class, DeclaredModule):  # former flat settings as the class takes them
        arguments = module_class.current_hparams(arguments)
    module = module_class(**arguments)
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
    ``_class_path``, ``state_dict`` and, where the file records them,
    ``datamodule_hyper_parameters``), for readers of checkpoints."""
    class_path, init_args, state = read_weights(path)
    hparams = init_args | {"_class_path": resolve_class_path(class_path)}
    checkpoint = {"hyper_parameters": hparams, "state_dict": state}
    with safe_open(str(path), framework="pt") as handle:
        data = (handle.metadata() or {}).get(DATA_KEY)
    if data is not None:
        checkpoint["datamodule_hyper_parameters"] = json.loads(data)
    return checkpoint


# ----------------------------------------------------------------------------- DCGAN parts
ENCODER_CONFIG_KEY = "encoder_config"


def load_generator(path: str | Path) -> tuple[Generator, LatentPrior]:
    """The generator of a DCGAN checkpoint (Lightning ``.ckpt`` or shipped ``.safetensors``),
    frozen in eval mode, and the latent prior it was trained with.

    Built from the checkpoint's arguments, not through ``DCGANModule``: under LightningCLI a
    module built inside another's ``__init__`` would save the outer module's hyperparameters.
    """
    if is_weights_file(path):
        class_path, hparams, state = read_weights(path)
    else:
        checkpoint = read_lightning_checkpoint(path)
        hparams, state = checkpoint.get("hyper_parameters") or {}, checkpoint["state_dict"]
        class_path = hparams.get("_class_path", DCGAN_CLASS)
    class_path = resolve_class_path(class_path)
    if class_path != DCGAN_CLASS or "latent_prior" not in hparams:
        raise ValueError(f"{str(path)!r} holds {class_path!r}, expected a DCGAN ({DCGAN_CLASS})")
    generator = Generator(hparams["latent_dim"], hparams["ngf"], hparams["image_size"])
    prefix = "generator."
    generator.load_state_dict(
        {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    )
    return generator.eval().requires_grad_(False), hparams["latent_prior"]


def load_latent_encoder(path: str | Path) -> LatentEncoder:
    """E from a ``.safetensors`` weights file or a ``LatentEncoderModule`` checkpoint, in eval
    mode with frozen parameters."""
    if is_weights_file(path):
        encoder = load_weights(path)
    else:
        checkpoint = read_lightning_checkpoint(path)
        if ENCODER_CONFIG_KEY not in checkpoint:
            raise ValueError(
                f"{str(path)!r} has no {ENCODER_CONFIG_KEY!r}; expected a LatentEncoderModule "
                "checkpoint (faceinpaint fit --config configs/encoder/...)"
            )
        encoder = LatentEncoder(**checkpoint[ENCODER_CONFIG_KEY])
        prefix = "encoder."
        encoder.load_state_dict(
            {
                k[len(prefix) :]: v
                for k, v in checkpoint["state_dict"].items()
                if k.startswith(prefix)
            }
        )
    if not isinstance(encoder, LatentEncoder):
        raise ValueError(
            f"{str(path)!r} holds a {type(encoder).__name__}, expected a LatentEncoder"
        )
    return encoder.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- kinds
def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A Lightning checkpoint (loaded without running code) or a shipped ``.safetensors``
    weights file, as a checkpoint dict; its ``_class_path`` is the current one."""
    if is_weights_file(Path(path)):
        return read_weights_checkpoint(Path(path))
    checkpoint = read_lightning_checkpoint(path, map_location)
    hparams = checkpoint.get("hyper_parameters")
    if isinstance(hparams, dict) and "_class_path" in hparams:
        hparams["_class_path"] = resolve_class_path(hparams["_class_path"])
    return checkpoint


def checkpoint_kind(checkpoint: dict[str, Any]) -> str:
    """``"vaegan"``, ``"dcgan"``, ``"landmarks"`` or the class path (or ``"unknown"``) it holds.

    Read from the ``_class_path`` that LightningCLI stores, else from what each module writes:
    the VAE-GAN's curriculum entry, the DCGAN's generator + discriminator, the landmark network.
    """
    hparams = checkpoint.get("hyper_parameters") or {}
    class_path = hparams.get("_class_path")
    if class_path:
        class_path = resolve_class_path(str(class_path))
        for kind, known in KIND_CLASSES.items():
            if class_path == known:
                return kind
        return class_path
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
    """The checkpoint's hyperparameters without LightningCLI's private ``_`` entries."""
    return {
        k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not k.startswith("_")
    }
