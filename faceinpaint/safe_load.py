"""Opening a pickled PyTorch file without running code: the package's one direct ``torch.load``.

``torch.load(weights_only=True)`` unpickles tensors, plain values and the classes registered
with ``torch.serialization.add_safe_globals`` (``faceinpaint.data.masks.MaskSpec``); a pickle
that names anything else (a function, a class: code that unpickling would run) is refused
before it runs, as :class:`UntrustedCheckpointError`. Lightning checkpoints, landmark networks
and VGG state dicts are all read through :func:`load_without_code`; Lightning's own loads
(``load_from_checkpoint``, a trainer's ``ckpt_path``) get ``weights_only=True`` and a file
read through it first.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

TRUST_NOTE = (
    "a checkpoint is a pickle: faceinpaint loads it with torch.load(weights_only=True), which "
    "runs no code; open a checkpoint from elsewhere in full only if you trust its source"
)


class UntrustedCheckpointError(ValueError):
    """A pickled file that holds objects other than tensors and plain values."""


def load_error_reason(err: BaseException) -> str:
    """The part of torch's (long) load error that says what went wrong."""
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(err)) or re.search(
        r"^(Trying to load unsupported GLOBAL [^\n]+)", str(err), re.MULTILINE
    )
    if found:
        return found.group(1).strip()
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def load_without_code(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; :class:`UntrustedCheckpointError` (one line, with
    the trust note) when the pickle names code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # "Unsupported global: GLOBAL x.y", or "Trying to load unsupported GLOBAL posix.system
        # whose module posix is blocked" for the modules torch blocks outright (os, subprocess)
        if "unsupported global" not in str(err).lower():
            raise
        raise UntrustedCheckpointError(
            f"checkpoint {str(path)!r} holds objects other than tensors and plain values "
            f"({load_error_reason(err)}); {TRUST_NOTE}"
        ) from err
