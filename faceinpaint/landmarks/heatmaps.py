"""Gaussian landmark heatmaps and soft-argmax, between image pixels and heatmap cells.

Pixel centres sit at integer coordinates in both grids. A heatmap of width ``w`` over an image of
width ``W`` has cells of ``W / w`` image pixels, so cell ``u`` covers image ``x`` with
``x = (u + 0.5) * W / w - 0.5`` (the convention of ``F.interpolate(..., align_corners=False)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def image_to_heatmap(
    points: Tensor, image_size: tuple[int, int], heatmap_size: tuple[int, int]
) -> Tensor:
    """``(..., 2)`` (x, y) image pixels -> heatmap cells; sizes are (height, width)."""
    scale = points.new_tensor([heatmap_size[1] / image_size[1], heatmap_size[0] / image_size[0]])
    return (points + 0.5) * scale - 0.5


def heatmap_to_image(
    points: Tensor, image_size: tuple[int, int], heatmap_size: tuple[int, int]
) -> Tensor:
    """``(..., 2)`` (x, y) heatmap cells -> image pixels; sizes are (height, width)."""
    scale = points.new_tensor([image_size[1] / heatmap_size[1], image_size[0] / heatmap_size[0]])
    return (points + 0.5) * scale - 0.5


def render_heatmaps(
    points: Tensor,
    image_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float = 1.0,
) -> Tensor:
    """Unnormalised Gaussians (peak 1) at ``points``.

    Args:
        points: ``(B, K, 2)`` (x, y) in image pixels; a non-finite point gives an all-zero map.
        image_size: (H, W) of the image the points refer to.
        heatmap_size: (h, w) of the maps.
        sigma: standard deviation in heatmap cells.

    Returns:
        ``(B, K, h, w)`` maps in [0, 1].
    """
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must be (B,K,2), got {tuple(points.shape)}")
    h, w = heatmap_size
    cells = image_to_heatmap(points, image_size, heatmap_size)
    valid = torch.isfinite(cells).all(dim=-1)  # (B, K)
    cells = torch.where(valid[..., None], cells, torch.zeros_like(cells))
    xs = torch.arange(w, device=points.device, dtype=points.dtype)
    ys = torch.arange(h, device=points.device, dtype=points.dtype)
    gx = torch.exp(-((xs - cells[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, K, w)
    gy = torch.exp(-((ys - cells[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, K, h)
    maps = gy[..., :, None] * gx[..., None, :]  # (B, K, h, w)
    return maps * valid[..., None, None].to(maps.dtype)


def soft_argmax(logits: Tensor, image_size: tuple[int, int] | None = None) -> Tensor:
    """Expected (x, y) under ``softmax`` over each map.

    Args:
        logits: ``(B, K, h, w)``.
        image_size: (H, W) to return image pixels; None returns heatmap cells.

    Returns:
        ``(B, K, 2)`` (x, y).
    """
    b, k, h, w = logits.shape
    prob = F.softmax(logits.reshape(b, k, h * w).float(), dim=-1).reshape(b, k, h, w)
    xs = torch.arange(w, device=logits.device, dtype=prob.dtype)
    ys = torch.arange(h, device=logits.device, dtype=prob.dtype)
    x = (prob.sum(dim=2) * xs).sum(dim=-1)  # (B, K)
    y = (prob.sum(dim=3) * ys).sum(dim=-1)
    cells = torch.stack([x, y], dim=-1).to(logits.dtype)
    if image_size is None:
        return cells
    return heatmap_to_image(cells, image_size, (h, w))
