"""Inpainting a user's photo: seconds per photo after start-up, as ``faceinpaint inpaint`` runs.

The photo is an embedded procedural face, a quarter of the photo's width, on a plain 4:3 canvas
(dlib finds it like a real one); the hole covers its nose. Each timed round is one
photo: detection, landmarks, the fill in the model's frame, the paste back and the PNG
encoding (in memory: no disk). The model and dlib are loaded before the timing (start-up).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from PIL import Image

from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import Sizes
from faceinpaint.bench.timing import Spread, interleave


def procedural_photo(width: int) -> tuple[np.ndarray, np.ndarray]:
    """A (3w/4, w, 3) uint8 photo of one embedded face and its (3w/4, w) bool hole."""
    from faceinpaint.data.datamodule import FaceDataModule

    data = FaceDataModule(image_size=128, num_workers=0, synthetic_size=80)
    side = width // 4
    face = cv2.resize(
        data.cached_split("test").images[0], (side, side), interpolation=cv2.INTER_CUBIC
    )
    height = 3 * width // 4
    top, left = (height - side) // 2, (width - side) // 3
    photo = np.full((height, width, 3), 128, np.uint8)
    photo[top : top + side, left : left + side] = face
    hole = np.zeros((height, width), dtype=bool)
    hole[top + side * 3 // 8 : top + side // 2, left + side * 3 // 8 : left + side * 5 // 8] = True
    return photo, hole


def bench_photo(device: torch.device, sizes: Sizes, warmup: int, repeats: int) -> Iterator[Row]:
    """s/photo of the VAE-GAN (the shipped demo weights: speed does not depend on training)."""
    from faceinpaint.paths import ASSETS
    from faceinpaint.photo.align import FaceAligner
    from faceinpaint.photo.inpaint import FrameInpainter, inpaint_photo

    photo, hole = procedural_photo(sizes.photo_width)
    inpainter = FrameInpainter(str(ASSETS / "vaegan-demo.safetensors"), str(device))
    aligner = FaceAligner()

    def one_photo() -> None:
        result = inpaint_photo(photo, hole, inpainter, aligner)
        Image.fromarray(result).save(io.BytesIO(), format="png")

    label = "vaegan demo weights"
    times = interleave({label: one_photo}, device, max(warmup, 1), repeats)  # 1st: dlib loads
    height, width = photo.shape[:2]
    yield Row.measured(
        "inpaint per photo",
        device.type,
        label,
        Spread.of(times[label]),
        "s/photo",
        note=f"{width}x{height} photo, {inpainter.frame.size} px frame, detect + landmarks + "
        f"fill + paste + PNG encoding, after start-up, {torch.get_num_threads()} threads",
    )
