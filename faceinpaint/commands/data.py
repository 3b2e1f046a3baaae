"""Data subcommands: ``faceinpaint prepare`` and ``faceinpaint preview``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torchvision.utils import save_image

from faceinpaint.batch import IMAGE, INDEX, fill_hole, to_unit
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.masks import MaskSpec, make_masks
from faceinpaint.io import atomic_write

PREVIEW_MASKS: tuple[tuple[str, MaskSpec], ...] = (
    ("center", MaskSpec(kind="center")),
    ("left", MaskSpec(kind="left")),
    ("right", MaskSpec(kind="right")),
    ("random_pixels", MaskSpec(kind="random_pixels")),
    ("random_square", MaskSpec(kind="random_square", min_side=0.25, max_side=0.5)),
    ("free_form thin", MaskSpec(kind="free_form", preset="thin")),
    ("free_form medium", MaskSpec(kind="free_form", preset="medium")),
    ("free_form thick", MaskSpec(kind="free_form", preset="thick")),
)


def prepare(data: FaceDataModule) -> dict:
    """Decode and cache every split of the configured data; print the split sizes."""
    data.prepare_data()
    summary = data.describe()
    print(json.dumps(summary, indent=1))
    return summary


def save_grid_atomic(images: torch.Tensor, out: Path, nrow: int) -> None:
    """Save (N,3,H,W) [0,1] images as a PNG grid through a temporary file."""
    with atomic_write(out, "wb") as handle:
        save_image(images, handle, format="PNG", nrow=nrow, padding=2, pad_value=1.0)


def preview(
    data: FaceDataModule,
    out: str = "outputs/preview.png",
    split: str = "val",
    count: int = 8,
    hole_fill: str = "zeros",
    seed: int = 0,
) -> Path:
    """Write a grid of faces: the originals, then one row per mask type (holes shown as ``hole_fill``).

    Args:
        out: the PNG to write.
        split: which split's faces to show.
        count: faces per row.
        hole_fill: ``zeros`` (grey) or ``noise``, as the networks see it.
        seed: mask seed.
    """
    dataset = data.dataset(split)
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    batch = dataset.__getitems__(list(range(min(count, len(dataset)))))
    batch = data.prepare_batch(batch, stage="test")
    image = batch[IMAGE]
    rows = [image]
    generator = torch.Generator(device=image.device).manual_seed(seed)
    for _, spec in PREVIEW_MASKS:
        mask = make_masks(spec, batch[INDEX], tuple(image.shape[-2:]), seed)
        rows.append(fill_hole(image, mask, hole_fill, generator))  # type: ignore[arg-type]
    grid = to_unit(torch.cat(rows))
    path = Path(out)
    save_grid_atomic(grid, path, nrow=image.shape[0])
    names = ", ".join(["original"] + [name for name, _ in PREVIEW_MASKS])
    print(f"wrote {path}: rows are {names}")
    return path
