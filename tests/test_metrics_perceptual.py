"""LPIPS / FID plumbing with tiny stand-in networks (the pretrained ones cannot be fetched here)."""

import urllib.error

import pytest
import torch
from torch import nn

from faceinpaint import metrics
from faceinpaint.metrics import PerceptualNetworks


class MeanAbsoluteDistance(nn.Module):
    """Stand-in for the LPIPS network: (B,3,H,W) twice -> (B,1,1,1) mean |a - b|."""

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return (first - second).abs().mean((1, 2, 3)).view(-1, 1, 1, 1)


class ChannelMeans(nn.Module):
    """Stand-in for Inception: (B,3,H,W) uint8 -> (B,3) channel means."""

    num_features = 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean((2, 3))


def _faces(batch: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 1.6 - 0.8


def test_lpips_summary_is_the_networks_per_face_distance():
    image = _faces()
    result = image + torch.linspace(0.0, 0.1, 6).view(-1, 1, 1, 1)
    metric = PerceptualNetworks(lpips=MeanAbsoluteDistance()).metrics()
    metric.update(result[:4], image[:4])
    metric.update(result[4:], image[4:])
    summary = metric.summary()
    assert set(summary) == {"lpips"}
    assert summary["lpips"]["n"] == 6
    assert summary["lpips"]["mean"] == pytest.approx(0.05, abs=1e-6)
    assert summary["lpips"]["max"] == pytest.approx(0.1, abs=1e-6)


def test_fid_of_a_constant_shift_is_its_squared_length():
    # Equal covariances: FID = |mean difference|^2 = 3 channels x (shift in uint8 steps)^2.
    image = _faces(batch=8)
    shift_steps = 10
    result = image + 2 * shift_steps / 255
    metric = PerceptualNetworks(fid=ChannelMeans()).metrics()
    metric.update(result, image)
    summary = metric.summary()
    assert summary["fid"]["n"] == 8
    assert summary["fid"]["value"] == pytest.approx(3 * shift_steps**2, rel=1e-3)
    same = PerceptualNetworks(fid=ChannelMeans()).metrics()
    same.update(image, image)
    assert same.summary()["fid"]["value"] == pytest.approx(0.0, abs=1e-3)


def test_fid_needs_two_faces():
    metric = PerceptualNetworks(fid=ChannelMeans()).metrics()
    metric.update(_faces(batch=1), _faces(batch=1))
    with pytest.raises(ValueError, match="at least 2 faces"):
        metric.summary()


def test_unknown_metric_name_is_rejected():
    with pytest.raises(ValueError, match="unknown metrics \\['kid'\\]"):
        PerceptualNetworks.load(["kid"], torch.device("cpu"))


@pytest.mark.parametrize("load", [metrics.lpips_network, metrics.fid_network])
def test_missing_weights_are_an_error_naming_the_file(load, tmp_path, monkeypatch):
    def offline(url: str, destination: str, progress: bool = True) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match=r"download https://\S+\.pth to .*hub/checkpoints/"):
        load()
