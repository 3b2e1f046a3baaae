"""The declared modules of faceinpaint: importing a module registers its classes (they subclass
:class:`faceinpaint.lit.method.DeclaredModule`, inpainting methods
:class:`~faceinpaint.lit.method.InpaintingModule`, with a ``kind``). One import line per module
is the whole registration; everything else reads :func:`methods` and :func:`declared`."""

from __future__ import annotations

import faceinpaint.lit.context_encoder  # noqa: F401 (registers ContextEncoderModule)
import faceinpaint.lit.dcgan  # noqa: F401 (registers DCGANModule)
import faceinpaint.lit.encoder  # noqa: F401 (registers LatentEncoderModule)
import faceinpaint.lit.landmarks  # noqa: F401 (registers LandmarkModule)
import faceinpaint.lit.vaegan  # noqa: F401 (registers VAEGANModule)
from faceinpaint.lit.method import (
    DeclaredModule,
    InpaintingModule,
    declared_modules,
    registered_methods,
)


def methods() -> dict[str, type[InpaintingModule]]:
    """``kind -> class`` of every registered inpainting method, by kind."""
    return registered_methods()


def declared() -> dict[str, type[DeclaredModule]]:
    """``kind -> class`` of every declared module: the methods, the landmark network, the
    latent encoder."""
    return declared_modules()
