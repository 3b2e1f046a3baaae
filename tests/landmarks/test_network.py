"""LandmarkNet shapes, coordinates consistent with its maps, and checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from faceinpaint.landmarks.heatmaps import soft_argmax
from faceinpaint.landmarks.network import LandmarkNet


@pytest.mark.parametrize(("size", "stride"), [(64, 2), (128, 4), (128, 2)])
def test_output_shapes(size: int, stride: int) -> None:
    net = LandmarkNet(widths=[8, 8, 16, 16, 16], heatmap_stride=stride).eval()
    logits, coords = net(torch.zeros(2, 3, size, size))
    assert logits.shape == (2, 68, size // stride, size // stride)
    assert coords.shape == (2, 68, 2)
    torch.testing.assert_close(coords, soft_argmax(logits, (size, size)))
    assert coords.min() >= -0.5 and coords.max() <= size - 0.5


def test_bad_stride_and_size_are_rejected() -> None:
    with pytest.raises(ValueError, match="heatmap_stride"):
        LandmarkNet(widths=[8, 8], heatmap_stride=8)
    with pytest.raises(ValueError, match="multiples of 4"):
        LandmarkNet(widths=[8, 8])(torch.zeros(1, 3, 30, 30))


def test_save_and_from_checkpoint_give_the_same_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    net = LandmarkNet(widths=[8, 8, 16], heatmap_stride=4).eval()
    net.save(tmp_path / "net.pt")
    loaded = LandmarkNet.from_checkpoint(tmp_path / "net.pt")
    assert loaded.config == net.config and not loaded.training
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded(x)[1], net(x)[1])


def test_from_checkpoint_names_the_missing_entry(tmp_path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(KeyError, match="landmark_net"):
        LandmarkNet.from_checkpoint(tmp_path / "other.ckpt")
