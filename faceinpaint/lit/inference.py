"""The class a checkpoint or weights file holds, and its inpainting module built for inference.

Above every declared module (:mod:`faceinpaint.lit.registry` imports them) and
:mod:`faceinpaint.lit.loading` (which reads the files), so that neither imports the other back.
What a file holds is read from the class it names (``_class_path``, or ``class_path`` in a
weights file) and, for a module saved outside LightningCLI, from the class whose
``recognizes`` accepts it; how it is built is that class's ``for_inference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faceinpaint.lit.loading import public_hparams, read_checkpoint
from faceinpaint.lit.method import DeclaredModule, InpaintingModule, import_class
from faceinpaint.lit.registry import declared, methods


def checkpoint_class(checkpoint: dict[str, Any]) -> type[DeclaredModule] | None:
    """The declared class of a checkpoint dict (:func:`read_checkpoint`), or None."""
    class_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    if class_path:
        cls = import_class(str(class_path))
        return cls if isinstance(cls, type) and issubclass(cls, DeclaredModule) else None
    for cls in declared().values():
        if cls.recognizes(checkpoint):
            return cls
    return None


def checkpoint_kind(checkpoint: dict[str, Any]) -> str:
    """The ``kind`` of the class a checkpoint holds (``vaegan``, ``dcgan``, ``landmarks``, ...),
    else the class path it names, else ``unknown``."""
    cls = checkpoint_class(checkpoint)
    if cls is not None:
        return cls.kind
    return str((checkpoint.get("hyper_parameters") or {}).get("_class_path") or "unknown")


def describe_kinds(kinds: Sequence[str]) -> str:
    """``VAE-GAN (faceinpaint.lit.vaegan.VAEGANModule) or ...`` for messages."""
    known = declared()
    return " or ".join(
        f"{known[k].display_name} ({known[k].class_path()})" if k in known else k for k in kinds
    )


def expect_kind(
    checkpoint: dict[str, Any], path: str | Path, expected: Sequence[str] | None = None
) -> type[DeclaredModule]:
    """The checkpoint's class, or ``ValueError`` naming what it holds and what was expected
    (``expected`` kinds; None: any registered inpainting method)."""
    expected = list(methods()) if expected is None else list(expected)
    cls = checkpoint_class(checkpoint)
    if cls is None or cls.kind not in expected:
        held = cls.display_name if cls is not None else checkpoint_kind(checkpoint)
        raise ValueError(
            f"checkpoint {str(path)!r} is a {held} checkpoint, expected a "
            f"{describe_kinds(expected)}"
        )
    return cls


def load_inpainter(
    path: str | Path, checkpoint: dict[str, Any] | None = None, **overrides: Any
) -> InpaintingModule:
    """The inpainting module of ``path`` (a Lightning ``.ckpt`` or shipped ``.safetensors``) for
    inference, in eval mode; ``overrides`` replace the settings its class names in
    ``inference_settings`` (a DCGAN's search, a VAE-GAN's ``poisson_iterations``).
    ``ValueError`` for a file that holds no registered inpainting method."""
    checkpoint = read_checkpoint(path) if checkpoint is None else checkpoint
    cls = expect_kind(checkpoint, path)
    return cls.for_inference(public_hparams(checkpoint), checkpoint["state_dict"], **overrides)
