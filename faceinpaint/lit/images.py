"""The one image logger of the Lightning modules: a grid to every logger of the run, and as a PNG.

wandb and TensorBoard get the grid itself; a PNG goes to ``png_path`` when the module asks for
one, else beside each CSV log (``<log_dir>/images/<tag>_<step>.png``). Only rank 0 logs.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from torch import Tensor
from torchvision.utils import make_grid

from faceinpaint.batch import to_unit
from faceinpaint.io import save_image


def to_uint8(image: Tensor) -> np.ndarray:
    """A (C,H,W) tensor in [0, 1] (C = 1 or 3) as 8-bit pixels: (H,W) for C = 1, else (H,W,C).

    wandb casts float arrays to uint8 without scaling (a grid in [0, 1] turns black), so images
    leave for any logger or file as these pixels."""
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return array[0] if array.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0))


def save_png(image: Tensor, path: Path) -> Path:
    """Write a (C,H,W) tensor in [0, 1] (C = 1 or 3) as an 8-bit PNG, atomically."""
    return save_image(to_uint8(image), path)


def figure_grid(rows: list[Tensor], samples: int) -> Tensor:
    """(3,H',W') grid in [0, 1]: one row per (B,3,S,S) tensor in [-1, 1], its first ``samples``
    images as columns (the paper's original / masked / result layout)."""
    n = min(samples, rows[0].shape[0])
    images = torch.cat([to_unit(x[:n].detach().float()) for x in rows])
    return make_grid(images, nrow=n, padding=2).cpu()


def log_image(
    trainer: pl.Trainer | None,
    tag: str,
    grid: Tensor,
    step: int,
    caption: str | None = None,
    wandb_step: int | None = None,
    png_path: Path | None = None,
) -> None:
    """Log a (3,H,W) ``grid`` in [0, 1] at ``step``.

    Args:
        trainer: the module's trainer (nothing is logged without one, or off rank 0).
        tag: the image's name, e.g. ``val/images``.
        step: the step TensorBoard and the CSV file names show.
        caption: wandb's caption.
        wandb_step: wandb's step (None: wandb's own; it must never go back).
        png_path: the PNG to write (always); None: one beside each CSV log.
    """
    if trainer is None or not trainer.is_global_zero:
        return
    grid = grid.detach().float().cpu()
    if png_path is not None:
        save_png(grid, png_path)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            extra = {"caption": [caption]} if caption is not None else {}
            logger.log_image(key=tag, images=[to_uint8(grid)], step=wandb_step, **extra)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, grid, global_step=step)
        elif isinstance(logger, CSVLogger) and png_path is None:
            name = f"{tag.replace('/', '_')}_{step:06d}.png"
            save_png(grid, Path(logger.log_dir) / "images" / name)
