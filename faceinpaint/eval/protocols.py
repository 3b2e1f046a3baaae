"""Benchmark protocols: which faces, at which size, under which fixed-seed masks.

A protocol is data-independent: sample ``i`` of a split gets the mask
``make_masks(spec, i, image_size, seed)`` whatever the data, the batch size or the device, so
every method (in one run or in runs months apart) sees identical holes. The evidence is the
**mask hash** (:func:`faceinpaint.data.masks.mask_hash` of all ``n`` masks of a task, in the
order evaluated) stored with every result row; :func:`check_mask_hashes` refuses rows of the
same (protocol, mask type, size, split, n, sample) whose hashes differ.

Which faces: the split's first ones (all, or the first ``--limit``), or with ``sample: k`` a
fixed random sample of ``k`` faces of the split (:func:`sample_indices`, seed ``sample_seed``),
the same for every mask type and method; ``--limit`` then takes the first of the sample.

The configs ``configs/eval/*.yaml`` hold the protocols under a ``protocol:`` section:

* ``thesis``: 64 px; ``center`` (a centred square of a quarter of the area), ``left`` and
  ``right`` halves, ``random_pixels`` (80 % of the pixels missing: Yeh et al.'s parameter,
  our choice, since the thesis gives none); ``thesis-sample``: the same on a fixed sample of
  500 faces, as the thesis evaluated about 500 sampled images.
* ``vaegan-paper``: 128 px; one square hole per face, side uniform in [32, 64] px, anywhere.
* ``free-form``: LaMa-style ``thin`` / ``medium`` / ``thick`` strokes at 64 and 128 px.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from faceinpaint.data.masks import MaskSpec, as_mask_spec, make_masks, mask_hash


def sample_indices(split_size: int, sample: int, seed: int) -> list[int]:
    """``sample`` distinct indices of ``0 .. split_size-1``, drawn without replacement by ``seed``.

    Each index gets the key ``sha256("<seed>:<index>")``; the sample is the ``sample`` indices
    of smallest key, in key order. No random-number stream is involved, so the sample is the
    same on every platform and library version, and any first ``k`` of it are themselves a
    uniform sample of ``k`` faces (what ``--limit k`` evaluates).
    """
    if not 1 <= sample <= split_size:
        raise ValueError(
            f"sample must be between 1 and the split's {split_size} faces, got {sample}"
        )

    def key(index: int) -> bytes:
        return hashlib.sha256(f"{seed}:{index}".encode()).digest()

    return sorted(range(split_size), key=key)[:sample]


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
    sample: int | None = None  # faces of a fixed random sample of the split; None = the first
    sample_seed: int = 0  # seed of that sample

    def masks(self, index: Tensor) -> Tensor:
        """(B,1,S,S) masks of dataset indices ``index`` (B,) int64, on ``index``'s device."""
        return make_masks(self.spec, index, self.image_size, self.seed)

    def indices(self, split_size: int, limit: int | None = None) -> list[int]:
        """The dataset indices evaluated, in order, of a split of ``split_size`` faces: its first
        ``limit`` (None: all), or with a ``sample`` the first ``limit`` of the sample."""
        if self.sample is None:
            return list(range(split_size if limit is None else min(limit, split_size)))
        if self.sample > split_size:
            raise ValueError(
                f"protocol {self.protocol!r}: sample {self.sample} needs at least that many faces; "
                f"split {self.split!r} has {split_size}"
            )
        return sample_indices(split_size, self.sample, self.sample_seed)[:limit]

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "mask": self.mask,
            "image_size": self.image_size,
            "spec": asdict(self.spec),
            "seed": self.seed,
            "split": self.split,
            "crop_size": self.crop_size,
            "sample": self.sample,
            "sample_seed": self.sample_seed,
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
        sample: evaluate a fixed random sample of this many faces of the split (the same for
            every mask type and method, :func:`sample_indices`) instead of its first faces;
            None: the first faces (all, or eval's ``--limit``).
        sample_seed: the seed of that sample.
        reported: the papers' own figures for this protocol (:class:`ReportedRow` or dicts),
            quoted in the comparison table above the measured rows of the same mask label (a
            run restricted to some masks, ``--protocol.masks``, shows those masks' rows).
    """

    name: str
    masks: dict[str, MaskSpec]
    image_sizes: tuple[int, ...] = (64,)
    seed: int = 0
    split: str = "val"
    crop_sizes: dict[int, float] = field(default_factory=dict)
    sample: int | None = None
    sample_seed: int = 0
    reported: tuple[ReportedRow, ...] = ()

    def __post_init__(self) -> None:
        if not self.masks:
            raise ValueError(f"protocol {self.name!r} has no masks")
        if self.sample is not None and self.sample < 1:
            raise ValueError(
                f"protocol {self.name!r}: sample must be >= 1 faces, got {self.sample}"
            )
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
                sample=self.sample,
                sample_seed=self.sample_seed,
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
            "sample": self.sample,
            "sample_seed": self.sample_seed,
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


def task_mask_hash(
    task: MaskTask, indices: int | Sequence[int], device: torch.device | str = "cpu"
) -> str:
    """The mask hash of ``task``'s masks of the dataset ``indices``, in order (an int ``n``:
    ``0 .. n-1``), computed on ``device``."""
    order = range(indices) if isinstance(indices, int) else indices
    index = torch.tensor(list(order), device=device, dtype=torch.int64)
    return mask_hash(task.masks(index))


def hash_key(row: Mapping[str, Any]) -> tuple:
    """What must give identical masks: protocol, mask type, size, split, face count and the
    sample (size and seed) the faces were drawn from, if any."""
    sample = row.get("sample")
    seed = row.get("sample_seed") if sample is not None else None
    return (row["protocol"], row["mask"], row["image_size"], row["split"], row["n"], sample, seed)


def check_mask_hashes(rows: Iterable[Mapping[str, Any]]) -> None:
    """Raise ``ValueError`` if two rows of the same ``hash_key`` carry different mask hashes."""
    seen: dict[tuple, Mapping[str, Any]] = {}
    for row in rows:
        key = hash_key(row)
        first = seen.setdefault(key, row)
        if first["mask_hash"] != row["mask_hash"]:
            sampled = f", sample {key[5]} (seed {key[6]})" if key[5] is not None else ""
            raise ValueError(
                f"mask hash mismatch for protocol {key[0]!r}, mask {key[1]!r}, {key[2]} px, "
                f"split {key[3]!r}, n={key[4]}{sampled}: method {first['method']!r} "
                f"(revision {first.get('git_revision', '?')}) saw {first['mask_hash'][:16]}..., "
                f"method {row['method']!r} (revision {row.get('git_revision', '?')}) saw "
                f"{row['mask_hash'][:16]}...; the masks differ, so the numbers are not "
                "comparable: write to a fresh --out folder or restore the protocol"
            )
