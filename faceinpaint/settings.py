"""Settings groups: a frozen dataclass per concern (STYLE habit 2), rebuilt from wherever a run's
settings travel: a checkpoint's pickled hyperparameters (the dataclass itself, allow-listed for
``torch.load(weights_only=True)`` by :func:`checkpoint_safe`), JSON or YAML (a mapping), and the
flat names that checkpoints written before the groups hold (:func:`fold_group`, which also
takes one field by its dotted name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import torch

Settings = TypeVar("Settings")


def checkpoint_safe(cls: type[Settings]) -> type[Settings]:
    """Class decorator: instances of ``cls`` load from checkpoints under ``weights_only=True``."""
    torch.serialization.add_safe_globals([cls])
    return cls


def as_group(cls: type[Settings], value: Any) -> Settings:
    """``value`` as a ``cls``: an instance as it is, a mapping (JSON, YAML) as its fields, None as
    the defaults."""
    if isinstance(value, cls):
        return value
    if value is None:
        return cls()
    if isinstance(value, Mapping):
        return cls(**value)
    raise TypeError(f"expected a {cls.__name__} or a mapping of its fields, got {value!r}")


def fold_group(
    hparams: Mapping[str, Any], group: str, cls: type[Settings], former: Mapping[str, str]
) -> dict[str, Any]:
    """``hparams`` with ``group`` a ``cls``: its own value (an instance, a mapping, or absent = the
    defaults), then, on top and removed from the result, the flat settings named in ``former``
    (flat name -> field) and the dotted ``"<group>.<field>"`` entries (as on LightningCLI's
    command line: ``search.candidates``). Without any of them, ``hparams`` as they are (the
    constructor's default applies)."""
    result = dict(hparams)
    prefix = f"{group}."
    fields = {field: result.pop(name) for name, field in former.items() if name in result}
    fields |= {
        name[len(prefix) :]: result.pop(name) for name in list(result) if name.startswith(prefix)
    }
    if group not in result and not fields:
        return result
    base = as_group(cls, result.get(group))
    result[group] = dataclasses.replace(base, **fields) if fields else base
    return result
