"""Benchmark protocols: which faces, at which size, under which fixed-seed masks.

A protocol is data-independent: sample ``i`` of a split gets the mask
``make_masks(spec, i, image_size, seed)`` whatever the data, the batch size or the device, so
every method (in one run or in runs months apart) sees identical holes. The evidence is the
**mask hash** (:func:`faceinpaint.data.masks.mask_hash` of all ``n`` masks of a task, in index
order) stored with every result row; :func:`check_mask_hashes` refuses rows of the same
(protocol, mask type, size, split, n) whose hashes differ.

The configs ``configs/eval/*.yaml`` hold the protocols under a ``protocol:`` section:

* ``thesis``: 64 px; ``center`` (a centred square of a quarter of the area), ``left`` and
  ``right`` halves, ``random_pixels`` (80 % of the pixels missing).
* ``vaegan-paper``: 128 px; one square hole per face, side uniform in [32, 64] px, anywhere.
* ``free-form``: LaMa-style ``thin`` / ``medium`` / ``thick`` strokes at 64 and 128 px.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from faceinpaint.data.masks import MaskSpec, as_mask_spec, make_masks, mask_hash


@dataclass(frozen=True)
class MaskTask:
    """One table row group: a mask type at one image size."""

    protocol: str  # protocol name, e.g. "thesis"
    mask: str  # mask type label, e.g. "center", or "thin-128" when a protocol has several sizes
    image_size: int  # side of the square faces, pixels
    spec: MaskSpec  # the masks drawn
    seed: int  # mask seed
    split: str  # data split evaluated
    crop_size: float | None  # crop side (fraction of the source width); None = the data's own

    def masks(self, index: Tensor) -> Tensor:
        """(B,1,S,S) masks of dataset indices ``index`` (B,) int64, on ``index``'s device."""
        return make_masks(self.spec, index, self.image_size, self.seed)

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "mask": self.mask,
            "image_size": self.image_size,
            "spec": asdict(self.spec),
            "seed": self.seed,
            "split": self.split,
            "crop_size": self.crop_size,
        }


@dataclass(frozen=True)
class ReportedRow:
    """A figure a paper printed for this protocol, quoted: never measured here, never mixed with
    measured rows (eval's comparison table shows them above this run's rows)."""

    source: str  # where it is printed, e.g. "IJIES 2020, Table 2"
    method: str  # the paper's row, e.g. "ours (VAE-GAN)", "CE"
    mask: str  # the protocol's mask label it belongs to
    psnr: float  # dB, as printed
    ssim: float  # as printed
    statistic: str = "mean"  # "mean", "max", ... over the paper's test set
    definition: str = "not stated"  # what the paper says the figure is computed on


@dataclass(frozen=True)
class Protocol:
    """A named set of mask types at one or more image sizes, with a fixed mask seed.

    Args:
        name: the protocol's name in tables and result rows.
        masks: mask type label -> mask spec (a ``MaskSpec`` or its dict).
        image_sizes: sides of the square faces, pixels; each mask type runs at each size.
        seed: mask seed (masks are a function of seed and sample index only).
        split: the data split evaluated (celeba-half: val = 008001-009000).
        crop_sizes: image size -> crop side as a fraction of the source width, for sizes whose
            training frame differs from the data config's ``crop_size`` (celeba-half: 0.61 at
            64 px, 0.8 at 128 px); sizes not listed use the data's.
        reported: the papers' own figures for this protocol (:class:`ReportedRow` or dicts),
            quoted in the comparison table above the measured rows.
    """

    name: str
    masks: dict[str, MaskSpec]
    image_sizes: tuple[int, ...] = (64,)
    seed: int = 0
    split: str = "val"
    crop_sizes: dict[int, float] = field(default_factory=dict)
    reported: tuple[ReportedRow, ...] = ()

    def __post_init__(self) -> None:
        if not self.masks:
            raise ValueError(f"protocol {self.name!r} has no masks")
        if not self.image_sizes or any(int(s) < 8 for s in self.image_sizes):
            raise ValueError(
                f"protocol {self.name!r}: image_sizes must be sizes >= 8 px, got {self.image_sizes}"
            )
        object.__setattr__(self, "masks", {k: as_mask_spec(v) for k, v in self.masks.items()})
        object.__setattr__(self, "image_sizes", tuple(int(s) for s in self.image_sizes))
        object.__setattr__(
            self, "crop_sizes", {int(k): float(v) for k, v in (self.crop_sizes or {}).items()}
        )
        reported = tuple(
            row if isinstance(row, ReportedRow) else ReportedRow(**dict(row))
            for row in self.reported or ()
        )
        unknown = sorted({row.mask for row in reported} - set(self.masks))
        if unknown:
            raise ValueError(
                f"protocol {self.name!r}: reported rows name masks {unknown}, not among its "
                f"masks {sorted(self.masks)}"
            )
        object.__setattr__(self, "reported", reported)

    def tasks(self) -> list[MaskTask]:
        """Every (image size, mask type), sizes outermost; labels get ``-<size>`` when sizes > 1."""
        several = len(self.image_sizes) > 1
        return [
            MaskTask(
                protocol=self.name,
                mask=f"{label}-{size}" if several else label,
                image_size=size,
                spec=spec,
                seed=self.seed,
                split=self.split,
                crop_size=self.crop_sizes.get(size),
            )
            for size in self.image_sizes
            for label, spec in self.masks.items()
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "masks": {label: asdict(spec) for label, spec in self.masks.items()},
            "image_sizes": list(self.image_sizes),
            "seed": self.seed,
            "split": self.split,
            "crop_sizes": dict(self.crop_sizes),
            **({"reported": [asdict(row) for row in self.reported]} if self.reported else {}),
        }


def as_protocol(value: Protocol | Mapping[str, Any]) -> Protocol:
    """A ``Protocol`` from itself or from the dict of a config's ``protocol:`` section."""
    if isinstance(value, Protocol):
        return value
    return Protocol(**dict(value))


def load_protocol(path: str | Path) -> Protocol:
    """The ``protocol:`` section of an eval config YAML."""
    sections = yaml.safe_load(Path(path).read_text())
    if not isinstance(sections, dict) or "protocol" not in sections:
        raise ValueError(f"{path} has no 'protocol:' section; expected a configs/eval/*.yaml file")
    return as_protocol(sections["protocol"])


def task_mask_hash(task: MaskTask, n: int, device: torch.device | str = "cpu") -> str:
    """The mask hash of samples ``0 .. n-1`` of ``task``, computed on ``device``."""
    index = torch.arange(n, device=device, dtype=torch.int64)
    return mask_hash(task.masks(index))


def hash_key(row: Mapping[str, Any]) -> tuple:
    """What must give identical masks: protocol, mask type, size, split and sample count."""
    return (row["protocol"], row["mask"], row["image_size"], row["split"], row["n"])


def check_mask_hashes(rows: Iterable[Mapping[str, Any]]) -> None:
    """Raise ``ValueError`` if two rows of the same ``hash_key`` carry different mask hashes."""
    seen: dict[tuple, Mapping[str, Any]] = {}
    for row in rows:
        key = hash_key(row)
        first = seen.setdefault(key, row)
        if first["mask_hash"] != row["mask_hash"]:
            raise ValueError(
                f"mask hash mismatch for protocol {key[0]!r}, mask {key[1]!r}, {key[2]} px, "
                f"split {key[3]!r}, n={key[4]}: method {first['method']!r} "
                f"(revision {first.get('git_revision', '?')}) saw {first['mask_hash'][:16]}..., "
                f"method {row['method']!r} (revision {row.get('git_revision', '?')}) saw "
                f"{row['mask_hash'][:16]}...; the masks differ, so the numbers are not "
                "comparable: write to a fresh --out folder or restore the protocol"
            )
