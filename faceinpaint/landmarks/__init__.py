"""Facial landmarks: the dlib teacher, Gaussian heatmaps, and the differentiable LandmarkNet.

Exports are resolved lazily: ``faceinpaint.landmarks.ibug`` is imported by the data pipeline,
which should not pay for torch models here. ``annotate`` (the ``faceinpaint landmarks annotate``
command) lives in ``faceinpaint.commands.annotate``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DlibTeacher": "faceinpaint.landmarks.teacher",
    "Source": "faceinpaint.landmarks.teacher",
    "WHOLE_IMAGE": "faceinpaint.landmarks.teacher",
    "CELEBA_CROP_BOX": "faceinpaint.landmarks.teacher",
    "LandmarkNet": "faceinpaint.landmarks.network",
    "render_heatmaps": "faceinpaint.landmarks.heatmaps",
    "soft_argmax": "faceinpaint.landmarks.heatmaps",
    "image_to_heatmap": "faceinpaint.landmarks.heatmaps",
    "heatmap_to_image": "faceinpaint.landmarks.heatmaps",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'faceinpaint.landmarks' has no attribute {name!r}")
