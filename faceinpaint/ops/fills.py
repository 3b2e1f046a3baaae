"""Classical hole fills, the floor every learned model must beat.

Every fill takes ``image`` (B,3,H,W) in [-1, 1] and ``mask`` (B,1,H,W), 1 = hole, and returns
the composited result (B,3,H,W) in [-1, 1]: known pixels are ``image``'s, exactly, through
:func:`faceinpaint.batch.composite`. All work on the tensors' device except the OpenCV and
PatchMatch fills, which round-trip through uint8 on the CPU, and the biharmonic fill, which
solves in float64 on the CPU.

``BASELINES`` names the fills that need nothing but the batch. The nearest-neighbour fill needs a
bank of training faces, so callers bind it: ``functools.partial(nearest_neighbour_fill, bank=faces)``.
``FILL_PACKAGES`` names the fills that import a package of their own (PyPatchMatch,
scikit-image): :func:`check_fill_names` refuses them, naming the package, where it is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from functools import partial
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from faceinpaint.batch import composite, from_unit, to_unit
from faceinpaint.ops.hole_solver import neighbour_sum, solve_hole_laplacian


def _known_mean(image: Tensor, known: Tensor) -> Tensor:
    """(B,3,1,1) mean colour of the known pixels; 0 (mid-grey) where nothing is known."""
    total = (image * known).sum(dim=(2, 3), keepdim=True)
    count = known.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    return total / count


def mean_fill(image: Tensor, mask: Tensor) -> Tensor:
    """Each sample's hole filled with the per-channel mean colour of its known pixels
    (0, mid-grey, for a sample with no known pixel)."""
    return composite(_known_mean(image, 1.0 - mask).expand_as(image), image, mask)


def harmonic_fill(
    image: Tensor, mask: Tensor, iters: int | None = None, tol: float = 1e-5
) -> Tensor:
    """Fill the hole with the solution of Laplace's equation, the known pixels as boundary values.

    The 5-point discrete Laplacian is zero at every hole pixel; known pixels are Dirichlet
    values; the image border is a Neumann (zero normal derivative) boundary, i.e. a pixel simply
    has fewer neighbours there. A plane ``a x + b y + c`` is reproduced exactly in any hole that
    does not touch the image border.

    Solved by conjugate gradients on the hole unknowns, every (sample, channel) an independent
    system, all iterated together on ``image``'s device (in at least float32), over the
    bounding box of the batch's holes plus a one-pixel ring of known values only.

    Args:
        iters: the most CG iterations; default ``4 * max(H, W)`` (the 64x64 hole of a 128x128
            face needs about 250 for ``tol=1e-5``).
        tol: stop when every system's residual RMS over its hole is below ``tol`` (in [-1, 1]
            pixel units; 1e-5 leaves errors near 1e-4). Checked every 16 iterations.
    """
    height, width = image.shape[-2:]
    max_iters = 4 * max(height, width) if iters is None else iters
    hole_rows = (mask > 0).any(dim=3).any(dim=0).flatten()  # (H,)
    hole_cols = (mask > 0).any(dim=2).any(dim=0).flatten()  # (W,)
    rows = hole_rows.nonzero().flatten()
    cols = hole_cols.nonzero().flatten()
    if rows.numel() == 0:
        return image.clone()
    top, bottom = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, height)
    left, right = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, width)
    box = (..., slice(top, bottom), slice(left, right))
    box_image = image[box].to(torch.promote_types(image.dtype, torch.float32))
    hole = (mask[box] > 0).to(box_image.dtype).expand_as(box_image)  # (B, 3, h, w)
    start = _known_mean(box_image, 1.0 - hole).expand_as(box_image)
    rhs = hole * neighbour_sum((1.0 - hole) * box_image)  # known neighbours are the boundary
    filled = solve_hole_laplacian(rhs, hole, start, max_iters, tol) + (1.0 - hole) * box_image
    solution = image.clone()
    solution[box] = filled.to(image.dtype)
    return composite(solution, image, mask)


def opencv_fill(
    image: Tensor,
    mask: Tensor,
    method: Literal["telea", "ns"] = "telea",
    radius: int = 3,
) -> Tensor:
    """``cv2.inpaint`` (Telea's fast marching or Navier-Stokes) on uint8 copies on the CPU.

    ``cv2.inpaint`` (4.x/5.0) reads a few hole pixels of holes that touch the image border, so
    the hole is mean-filled first: the result depends on the known pixels only.

    Args:
        method: ``"telea"`` (cv2.INPAINT_TELEA) or ``"ns"`` (cv2.INPAINT_NS).
        radius: neighbourhood radius in pixels that each filled pixel draws on.
    """
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    if method not in flags:
        raise ValueError(f"method must be 'telea' or 'ns', got {method!r}")
    pixels = _uint8_images(mean_fill(image.detach(), mask))
    filled = np.stack(
        [
            cv2.inpaint(rgb, hole, radius, flags[method])
            for rgb, hole in zip(pixels, _holes(mask), strict=True)
        ]
    )
    return composite(_from_uint8_images(filled, image), image, mask)


def _uint8_images(image: Tensor) -> np.ndarray:
    """(B,3,H,W) in [-1, 1] -> (B,H,W,3) uint8 on the CPU, rounded."""
    pixels = (to_unit(image.detach()).clamp(0, 1) * 255.0).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def _from_uint8_images(pixels: np.ndarray, like: Tensor) -> Tensor:
    """(B,H,W,3) uint8 -> (B,3,H,W) in [-1, 1] with ``like``'s device and dtype."""
    images = torch.from_numpy(pixels).to(like.device).permute(0, 3, 1, 2)
    return from_unit(images.to(like.dtype) / 255.0)


def _holes(mask: Tensor) -> np.ndarray:
    """(B,1,H,W) -> (B,H,W) uint8 on the CPU, 1 = hole."""
    return (mask.detach()[:, 0] > 0).to(torch.uint8).cpu().numpy()


def patchmatch_fill(image: Tensor, mask: Tensor, patch_size: int = 3, seed: int = 0) -> Tensor:
    """PatchMatch inpainting (Barnes et al. 2009) by PyPatchMatch, on uint8 copies on the CPU.

    Each hole is filled, coarse to fine, with patches copied from the known pixels of the same
    face, found by PatchMatch's randomised nearest-neighbour search; hole pixels are never read.
    The search starts from ``seed`` for every face, so a face's fill depends on nothing else.

    Args:
        patch_size: radius of the compared patches in pixels (they span ``2 * patch_size + 1``);
            3 (7 x 7) as PyPatchMatch's examples.
        seed: seed of the randomised search.
    """
    patchmatch = _fill_module("patchmatch")
    filled = []
    for rgb, hole in zip(_uint8_images(image), _holes(mask), strict=True):
        patchmatch.set_random_seed(seed)
        filled.append(patchmatch.inpaint(rgb, hole, patch_size=patch_size))
    return composite(_from_uint8_images(np.stack(filled), image), image, mask)


def biharmonic_fill(image: Tensor, mask: Tensor) -> Tensor:
    """The biharmonic fill of scikit-image (``skimage.restoration.inpaint_biharmonic``).

    Each hole pixel solves the biharmonic equation (the squared 5-point Laplacian is zero) with
    the known pixels around the hole as boundary values: smoother than the harmonic fill, and
    it continues gradients across the hole instead of flattening them. Solved per face and
    channel in float64 on the CPU; the result is clipped to [-1, 1].
    """
    restoration = _fill_module("biharmonic")
    known = (1.0 - mask).detach()
    rgb = (image.detach() * known).double().permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
    filled = np.stack(
        [
            restoration.inpaint_biharmonic(face, hole.astype(bool), channel_axis=-1)
            for face, hole in zip(rgb, _holes(mask), strict=True)
        ]
    )
    pred = torch.from_numpy(filled).permute(0, 3, 1, 2).to(image.device, image.dtype)
    return composite(pred.clamp(-1.0, 1.0), image, mask)


def nearest_neighbour_fill(image: Tensor, mask: Tensor, bank: Tensor, chunk: int = 1024) -> Tensor:
    """Fill each hole from the bank face closest to the image on its known pixels.

    Args:
        bank: (N,3,H,W) training faces in [-1, 1], on any device; moved to ``image``'s device
            ``chunk`` faces at a time.
        chunk: bank faces compared per step (memory: ``chunk x 3 x H x W`` values).

    The distance is the squared error summed over the known pixels, expanded as
    ``sum(known * f^2) - 2 sum(known * x * f)`` (the ``sum(known * x^2)`` term does not change
    the arg-min), so each chunk costs two matrix products. Ties go to the lowest bank index.
    """
    if bank.ndim != 4 or bank.shape[1:] != image.shape[1:]:
        raise ValueError(
            f"bank must be (N,{', '.join(map(str, image.shape[1:]))}), got {tuple(bank.shape)}"
        )
    dtype = torch.promote_types(image.dtype, torch.float32)  # distances never in half precision
    known = (1.0 - mask).expand_as(image).flatten(1).to(dtype)  # (B, 3HW)
    known_image = known * image.flatten(1).to(dtype)  # (B, 3HW)
    best_distance = torch.full((image.shape[0],), float("inf"), device=image.device, dtype=dtype)
    best_face = torch.zeros_like(image)
    for begin in range(0, bank.shape[0], chunk):
        faces = bank[begin : begin + chunk].to(device=image.device, dtype=image.dtype)
        flat = faces.flatten(1).to(dtype)  # (C, 3HW)
        distance = known @ flat.pow(2).T - 2.0 * known_image @ flat.T  # (B, C)
        chunk_distance, chunk_index = distance.min(dim=1)
        better = chunk_distance < best_distance  # strict: earlier chunks win ties
        best_distance = torch.where(better, chunk_distance, best_distance)
        best_face = torch.where(better.view(-1, 1, 1, 1), faces[chunk_index], best_face)
    return composite(best_face, image, mask)


BASELINES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mean": mean_fill,
    "harmonic": harmonic_fill,
    "telea": partial(opencv_fill, method="telea"),
    "ns": partial(opencv_fill, method="ns"),
    "patchmatch": patchmatch_fill,
    "biharmonic": biharmonic_fill,
}

# The classical rows of every table where no train split is searched (the demo, `score`; eval
# adds nearest neighbour): the thesis's peer PatchMatch and scikit-image's biharmonic fill
# included, both dependencies of faceinpaint.
FILLS_WITHOUT_BANK = ("mean", "harmonic", "telea", "ns", "patchmatch", "biharmonic")

# fill -> (module it imports, the PyPI package that provides it)
FILL_PACKAGES: dict[str, tuple[str, str]] = {
    "patchmatch": ("patchmatch", "PyPatchMatch"),
    "biharmonic": ("skimage.restoration", "scikit-image"),
}


def _fill_module(name: str):
    """The module behind fill ``name``; a one-line ``ValueError`` naming the package when it is
    missing (or, for PyPatchMatch, installed without its native library)."""
    module_name, package = FILL_PACKAGES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    if module is None or not getattr(module, "patchmatch_available", True):
        raise ValueError(
            f"the {name!r} fill needs the package {package}, which is not installed here: "
            f"pip install {package} (a dependency of faceinpaint), or leave {name!r} out"
        )
    return module


def check_fill_names(names: Iterable[str], known: Iterable[str] = BASELINES) -> None:
    """Raise one ``ValueError`` naming every entry of ``names`` that is not in ``known``, or
    the package a named fill needs where it is not installed."""
    known = list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown classical fills {unknown}; expected some of {known}")
    for name in names:
        if name in FILL_PACKAGES:
            _fill_module(name)
