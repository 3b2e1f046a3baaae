"""Conjugate gradients on the 5-point Laplacian restricted to a hole: the one solver behind the
harmonic fill (zero guidance) and Poisson blending (the generated image's gradients as guidance).

Every (sample, channel) is an independent symmetric positive definite system (whenever each
connected part of the hole touches a known pixel); all are iterated together on the tensors'
device. Positions outside the image are left out (Neumann boundary).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def neighbour_sum(x: Tensor) -> Tensor:
    """Sum of the 4 neighbours of every pixel of (N,C,H,W) ``x``; outside the image counts as 0."""
    padded = F.pad(x, (1, 1, 1, 1))
    return (
        padded[..., :-2, 1:-1]
        + padded[..., 2:, 1:-1]
        + padded[..., 1:-1, :-2]
        + padded[..., 1:-1, 2:]
    )


def solve_hole_laplacian(
    rhs: Tensor, hole: Tensor, start: Tensor, max_iters: int, tol: float | None = None
) -> Tensor:
    """Solve ``L x = rhs`` for the hole pixels, ``L`` the hole's graph Laplacian.

    Args:
        rhs: (B,C,H,W) right-hand side, zero outside the hole.
        hole: (B,C,H,W) 1 in the hole, 0 elsewhere.
        start: (B,C,H,W) initial guess (only its hole pixels are read).
        max_iters: the most iterations.
        tol: stop when every system's residual RMS over its hole is at most ``tol``, checked every
            16 iterations (one host synchronisation each); None runs exactly ``max_iters``
            iterations with no host synchronisation.

    Returns:
        (B,C,H,W) the solution in the hole, zero elsewhere.
    """
    degree = neighbour_sum(torch.ones_like(rhs[:1, :1]))  # (1,1,H,W): 4 inside, 3 edge, 2 corner

    def laplacian_on_hole(x: Tensor) -> Tensor:
        return hole * (degree * x - neighbour_sum(hole * x))

    tiny = torch.finfo(rhs.dtype).tiny  # keeps 0/0 out of converged systems
    hole_count = hole.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    x = hole * start
    residual = rhs - laplacian_on_hole(x)
    direction = residual.clone()
    residual_sq = residual.pow(2).sum(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    for step in range(max_iters):
        if tol is not None and step % 16 == 0 and bool((residual_sq / hole_count).max() <= tol**2):
            break
        applied = laplacian_on_hole(direction)
        curvature = (direction * applied).sum(dim=(2, 3), keepdim=True)
        alpha = torch.where(curvature > 0, residual_sq / curvature.clamp_min(tiny), 0.0)
        x = x + alpha * direction
        residual = residual - alpha * applied
        new_residual_sq = residual.pow(2).sum(dim=(2, 3), keepdim=True)
        beta = torch.where(residual_sq > 0, new_residual_sq / residual_sq.clamp_min(tiny), 0.0)
        direction = residual + beta * direction
        residual_sq = new_residual_sq
    return x
