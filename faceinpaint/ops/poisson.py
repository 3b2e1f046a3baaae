"""Poisson blending (Pérez et al. 2003) of a generated hole into the damaged image, on the
batch's device.

Inside the hole, the result ``f`` solves the discrete Poisson equation whose guidance field is
the source's gradient: for every hole pixel ``p`` and each of its 4-neighbours ``q`` inside the
image,

    sum_q (f_p - f_q) = sum_q (s_p - s_q),

with ``f_q`` fixed to the target's value wherever ``q`` is known (Dirichlet boundary). Edges to
positions outside the image are left out (Neumann boundary), so a hole that touches the border
(the left/right half masks) is still well posed. Known pixels are copied from the target.

The linear system (the hole's graph Laplacian, symmetric positive definite whenever every
connected part of the hole touches a known pixel) is solved per sample and channel by conjugate
gradients for a fixed number of iterations: no host synchronisation, every sample independent
of its batch neighbours. A sample with no known pixel has no boundary; it gets the source back.
"""

from __future__ import annotations

import torch
from torch import Tensor

from faceinpaint.batch import composite
from faceinpaint.ops.hole_solver import neighbour_sum, solve_hole_laplacian


def poisson_blend(
    source: Tensor, target: Tensor, mask: Tensor, iterations: int = 512, clamp: bool = True
) -> Tensor:
    """(B,C,H,W) ``target``'s known pixels, and in the hole the field whose gradient matches
    ``source``'s, with ``target``'s known pixels as boundary values.

    Args:
        source: (B,C,H,W) the generated image whose gradients fill the hole.
        target: (B,C,H,W) the damaged image; only its known pixels are ever read.
        mask: (B,1,H,W), 1 = hole.
        iterations: conjugate-gradient iterations (a 64 x 32 half-image hole converges to
            float32 precision within about 300).
        clamp: clamp the result to [-1, 1].
    """
    if source.shape != target.shape or source.ndim != 4:
        raise ValueError(
            f"source and target must both be (B,C,H,W), got {tuple(source.shape)} and "
            f"{tuple(target.shape)}"
        )
    b, _, h, w = source.shape
    if tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(f"mask must be (B,1,H,W) = {(b, 1, h, w)}, got {tuple(mask.shape)}")
    hole = mask.to(source.dtype).expand_as(source)
    is_known = hole == 0
    known_target = torch.where(is_known, target, torch.zeros_like(target))
    degree = neighbour_sum(torch.ones_like(source))  # (B, C, H, W): 2, 3 or 4
    rhs = hole * (degree * source - neighbour_sum(source) + neighbour_sum(known_target))
    # start from the source: the exact answer when the boundary agrees with it
    solution = solve_hole_laplacian(rhs, hole, source, iterations)
    has_boundary = is_known.flatten(1).any(1).view(b, 1, 1, 1)
    filled = torch.where(has_boundary, solution, source)
    if clamp:
        filled = filled.clamp(-1.0, 1.0)
    return composite(filled, known_target, mask.to(source.dtype))


def paste_or_blend(output: Tensor, damaged: Tensor, mask: Tensor, iterations: int) -> Tensor:
    """(B,C,H,W) a method's raw ``output`` put into ``damaged``'s hole (``mask`` (B,1,H,W),
    1 = hole): pasted (:func:`~faceinpaint.batch.composite`) with ``iterations`` 0, else
    Poisson-blended with that many conjugate-gradient iterations."""
    if iterations < 0:
        raise ValueError(f"poisson_iterations must be >= 0, got {iterations}")
    if iterations == 0:
        return composite(output, damaged, mask)
    return poisson_blend(output, damaged, mask, iterations)
