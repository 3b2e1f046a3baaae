"""The inpainting methods of faceinpaint: importing a method's module registers it (its class
subclasses :class:`faceinpaint.lit.method.InpaintingModule` with a ``kind``). One import line per
method is the whole registration; everything else reads :func:`methods`."""

from __future__ import annotations

import faceinpaint.lit.dcgan  # noqa: F401 (registers DCGANModule)
import faceinpaint.lit.vaegan  # noqa: F401 (registers VAEGANModule)
from faceinpaint.lit.method import InpaintingModule, registered_methods


def methods() -> dict[str, type[InpaintingModule]]:
    """``kind -> class`` of every registered inpainting method, in registration order."""
    return registered_methods()
