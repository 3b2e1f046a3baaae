"""The batch contract shared by data, models, losses and evaluation.

Every batch that leaves the DataModule (after ``on_after_batch_transfer``) is a
``dict`` with these keys:

=====================  ===========================  =========================================
key                    shape / dtype                meaning
=====================  ===========================  =========================================
``image``              ``(B,3,H,W)`` float          the original face, values in [-1, 1]
``mask``               ``(B,1,H,W)`` float          1 = hole (missing), 0 = known
``index``              ``(B,)`` int64               dataset index, seeds the masks
``landmarks``          ``(B,68,2)`` float           optional; (x, y) in pixels of ``image``,
                                                    iBUG/dlib order, pixel centres at integers
``landmarks_found``    ``(B,)`` bool                optional; False where no face was found
=====================  ===========================  =========================================

``composite`` is the one place where a prediction is blended with the known
pixels; ``to_unit`` / ``from_unit`` the one place where [-1, 1] meets [0, 1].
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

IMAGE = "image"
MASK = "mask"
INDEX = "index"
LANDMARKS = "landmarks"
LANDMARKS_FOUND = "landmarks_found"

HoleFill = Literal["zeros", "noise"]


def composite(pred: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Known pixels from ``image``, hole pixels from ``pred``; ``mask`` is 1 in the hole."""
    return mask * pred + (1.0 - mask) * image


def to_unit(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped (metrics and image files use this range)."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def from_unit(x: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


def fill_hole(
    image: Tensor,
    mask: Tensor,
    mode: HoleFill = "zeros",
    generator: torch.Generator | None = None,
    index: Tensor | None = None,
    seed: int = 0,
) -> Tensor:
    """The network input: ``image`` with its hole replaced by zeros or by N(0,1) noise clamped to [-1,1].

    Noise comes from ``generator`` (on ``image``'s device), or, when ``index`` (B,) is given, from
    one generator per sample seeded by ``(seed, index)``: then a sample's noise does not depend on
    its batch neighbours, the batch order or the number of processes (evaluation uses this).
    """
    if mode == "zeros":
        filler = torch.zeros_like(image)
    elif mode == "noise":
        if index is not None:
            filler = per_sample_noise(image.shape, index, seed).to(image)
        else:
            filler = torch.randn(
                image.shape, generator=generator, device=image.device, dtype=image.dtype
            )
        filler = filler.clamp_(-1.0, 1.0)
    else:
        raise ValueError(f"hole fill must be 'zeros' or 'noise', got {mode!r}")
    return composite(filler, image, mask)


def sample_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator of one sample: seeded by ``(seed, index)`` alone, so a sample draws the
    same numbers in any batch, on any device and on any number of ranks."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def per_sample_noise(shape: torch.Size | tuple[int, ...], index: Tensor, seed: int = 0) -> Tensor:
    """(B, ...) float32 N(0,1) noise on the CPU, sample b drawn from a generator seeded by
    ``(seed, index[b])`` alone."""
    if index.shape != (shape[0],):
        raise ValueError(f"index must be ({shape[0]},), got {tuple(index.shape)}")
    return torch.stack(
        [torch.randn(tuple(shape[1:]), generator=sample_generator(seed, i)) for i in index.tolist()]
    )


def check_batch(batch: dict[str, Tensor]) -> None:
    """Raise ``ValueError`` naming the first key that breaks the contract."""
    for key in (IMAGE, MASK):
        if key not in batch:
            raise ValueError(f"batch has no {key!r}; keys are {sorted(batch)}")
    image, mask = batch[IMAGE], batch[MASK]
    if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
        raise ValueError(f"image must be float (B,3,H,W), got {tuple(image.shape)} {image.dtype}")
    if float(image.min()) < -1.0 - 1e-4 or float(image.max()) > 1.0 + 1e-4:
        raise ValueError(
            f"image values must lie in [-1,1], got [{float(image.min()):.3f}, {float(image.max()):.3f}]"
        )
    b, _, h, w = image.shape
    if tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(f"mask must be (B,1,H,W) = {(b, 1, h, w)}, got {tuple(mask.shape)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask values must be 0 (known) or 1 (hole)")
    if LANDMARKS in batch and tuple(batch[LANDMARKS].shape) != (b, 68, 2):
        raise ValueError(f"landmarks must be (B,68,2), got {tuple(batch[LANDMARKS].shape)}")
