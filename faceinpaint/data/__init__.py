"""Faces in the batch contract: sources, cache, masks and the shared DataModule.

Exports are resolved lazily so that cache-building worker processes, which import
``faceinpaint.data.cache``, do not pay for importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FaceDataModule": "faceinpaint.data.datamodule",
    "MaskSpec": "faceinpaint.data.masks",
    "make_masks": "faceinpaint.data.masks",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'faceinpaint.data' has no attribute {name!r}")
