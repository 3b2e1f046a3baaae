"""Heatmap rendering, pixel-centre conventions and the soft-argmax round trip."""

from __future__ import annotations

import pytest
import torch

from faceinpaint.landmarks.heatmaps import (
    heatmap_to_image,
    image_to_heatmap,
    render_heatmaps,
    soft_argmax,
)


def test_cell_centres_map_to_pixel_block_centres() -> None:
    # A 2x smaller map: cell 0 covers image pixels 0 and 1, so its centre is x = 0.5.
    cells = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    image = heatmap_to_image(cells, (64, 64), (32, 32))
    torch.testing.assert_close(image, torch.tensor([[0.5, 0.5], [2.5, 6.5]]))
    torch.testing.assert_close(image_to_heatmap(image, (64, 64), (32, 32)), cells)


def test_render_peaks_at_the_point() -> None:
    points = torch.tensor([[[5.0, 7.0]]])  # (1,1,2) at heatmap resolution == image
    maps = render_heatmaps(points, (16, 16), (16, 16), sigma=1.0)
    assert maps.shape == (1, 1, 16, 16)
    assert maps[0, 0, 7, 5] == 1.0
    assert maps[0, 0].argmax() == 7 * 16 + 5
    torch.testing.assert_close(maps[0, 0, 7, 6], torch.exp(torch.tensor(-0.5)))


def test_non_finite_point_gives_an_empty_map() -> None:
    points = torch.tensor([[[float("nan"), 3.0], [4.0, 4.0]]])
    maps = render_heatmaps(points, (16, 16), (16, 16))
    assert maps[0, 0].abs().sum() == 0
    assert maps[0, 1].max() == 1.0


@pytest.mark.parametrize(
    ("image_size", "heatmap_size"),
    [((64, 64), (32, 32)), ((128, 96), (32, 24)), ((64, 64), (64, 64))],
)
def test_soft_argmax_inverts_render_to_subpixel(image_size, heatmap_size) -> None:
    generator = torch.Generator().manual_seed(0)
    h, w = image_size
    # Away from the border (3 sigma of heatmap cells) so the Gaussian is not truncated.
    margin = 3.0 * h / heatmap_size[0]
    points = (
        torch.rand(4, 68, 2, generator=generator) * torch.tensor([w - 2 * margin, h - 2 * margin])
        + margin
    )
    maps = render_heatmaps(points, image_size, heatmap_size, sigma=1.0)
    recovered = soft_argmax(maps.clamp(min=1e-12).log(), image_size)
    assert (recovered - points).abs().max() < 0.05
