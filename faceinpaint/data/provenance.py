"""What a checkpoint's data was, as records: the frame of its faces and the images it trained on.

``FaceDataModule`` writes both into every checkpoint (its ``state_dict``), and
``faceinpaint.data.datamodule`` reads them back (``checkpoint_frame``,
``checkpoint_training_images``): from the DataModule's state, or, for an older checkpoint, from its
``datamodule_hyper_parameters``. They let ``faceinpaint eval`` and the landmark loss refuse faces
framed otherwise than the network learned, and refuse to score training images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

TRAINING_IMAGES_KEY = "training_images"
FRAME_KEY = "frame"
DATAMODULE_STATE_KEY = (
    "FaceDataModule"  # Lightning stores a DataModule's state under its class name
)


@dataclass(frozen=True)
class FaceFrame:
    """How faces are cut from their source and sized: what a network trained on them learned to see.

    ``source``: ``aligned`` (a fixed crop of aligned faces: CelebA's img_align_celeba or a folder),
    ``face box`` (a square around CelebA's in-the-wild face box) or ``embedded`` (procedural faces).
    ``crop``: aligned: (centre x, centre y, side) as fractions of the width / height / width;
    face box: (side / the box's longer side,); embedded: ().
    """

    source: str
    image_size: int
    crop: tuple[float, ...] = ()

    def __str__(self) -> str:
        if self.source == "aligned":
            cx, cy, side = self.crop
            return f"{self.image_size} px from a {side:g} x width crop at ({cx:g}, {cy:g}) of aligned faces"
        if self.source == "face box":
            return (
                f"{self.image_size} px from a square of {self.crop[0]:g} x the face box (unaligned)"
            )
        return f"{self.image_size} px embedded procedural faces"

    def state(self) -> dict[str, Any]:
        """Plain types, for a checkpoint."""
        return {"source": self.source, "image_size": self.image_size, "crop": list(self.crop)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FaceFrame:
        return cls(str(state["source"]), int(state["image_size"]), tuple(state["crop"]))

    def settings(self) -> dict[str, Any]:
        """The ``FaceDataModule`` arguments that give this frame (source and size aside)."""
        if self.source == "aligned":
            return {"crop_center": self.crop[:2], "crop_size": self.crop[2]}
        if self.source == "face box":
            return {"box_scale": self.crop[0]}
        return {}


def image_id(name: str) -> int:
    """A face's identity as an int64: a hash of its file stem (CelebA's numbers are global:
    ``000001.jpg`` in img_align_celeba, img_celeba and celeba-half is one photo)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return int.from_bytes(
        hashlib.blake2b(stem.encode(), digest_size=8).digest(), "little", signed=True
    )


@dataclass(frozen=True)
class ImageSet:
    """A set of face identities, cheap to store (8 bytes per image) and to intersect."""

    ids: Tensor  # (N,) int64, sorted, unique
    description: str  # e.g. "train split of data/celeba (celeba layout), 162770 images"

    @classmethod
    def from_names(cls, names: Sequence[str], description: str) -> ImageSet:
        ids = torch.tensor([image_id(n) for n in names], dtype=torch.int64)
        return cls(torch.unique(ids), description)

    def overlap(self, names: Sequence[str]) -> list[str]:
        """The ``names`` that are in the set, in their order."""
        ids = torch.tensor([image_id(n) for n in names], dtype=torch.int64)
        return [n for n, hit in zip(names, torch.isin(ids, self.ids).tolist(), strict=True) if hit]

    def state(self) -> dict[str, Any]:
        return {"ids": self.ids, "description": self.description}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ImageSet:
        return cls(torch.as_tensor(state["ids"], dtype=torch.int64), str(state["description"]))
