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


# ----------------------------------------------------------------------------- torchmetrics objects
def _lpips_shaped_network() -> nn.Module:
    """torchmetrics' LPIPS network (AlexNet and its linear heads) with random weights: nothing to
    download, the real network's shapes and arithmetic."""
    from torchmetrics.functional.image.lpips import _LPIPS

    torch.manual_seed(0)
    return _LPIPS(pretrained=False, net="alex", pnet_rand=True).eval()


class PooledFeatures(nn.Module):
    """Stand-in for Inception with correlated features, each face's independent of its batch:
    (B,3,H,W) uint8 -> (B,12) means of its 2 x 2 blocks per channel."""

    num_features = 12

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 2).flatten(1)


def test_lpips_equals_the_former_per_face_computation():
    """The former PerceptualMetrics: ``net(result.clamp(-1, 1), image.clamp(-1, 1)).flatten()``
    per batch, concatenated, ``summary_statistics`` of the doubles."""
    network = _lpips_shaped_network()
    image, result = _faces(batch=5, size=32, seed=1), _faces(batch=5, size=32, seed=2) * 1.3
    metric = metrics.LPIPS(network)
    metric.update(result[:3], image[:3])
    metric.update(result[3:], image[3:])
    with torch.no_grad():
        former = torch.cat(
            [
                network(result[:3].clamp(-1, 1), image[:3].clamp(-1, 1)).flatten(),
                network(result[3:].clamp(-1, 1), image[3:].clamp(-1, 1)).flatten(),
            ]
        )
    assert torch.equal(metric.per_sample(), former)
    assert metric.summary() == {"lpips": metrics.summary_statistics(former.double())}
    assert metric.compute() == former.mean()


def test_fid_equals_torchmetrics_fid_as_formerly_called():
    """The former PerceptualMetrics: torchmetrics' FID over the network, originals as real and
    results as fake, both rounded to uint8."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    network = PooledFeatures()
    image, result = _faces(batch=12, seed=3), _faces(batch=12, seed=4)
    metric = metrics.FID(network)
    former = FrechetInceptionDistance(feature=network, normalize=False)
    for part in (slice(0, 5), slice(5, 12)):
        metric.update(result[part], image[part])
        former.update((metrics.to_unit(image[part]) * 255).round().to(torch.uint8), real=True)
        former.update((metrics.to_unit(result[part]) * 255).round().to(torch.uint8), real=False)
    assert metric.summary() == {"fid": {"value": float(former.compute()), "n": 12}}
    assert metric.summary()["fid"]["value"] > 0


def _lpips() -> metrics.LPIPS:
    return metrics.LPIPS(_lpips_shaped_network())


def _fid() -> metrics.FID:
    return metrics.FID(PooledFeatures())


@pytest.mark.parametrize("build", [_lpips, _fid], ids=["lpips", "fid"])
def test_reset_gives_what_a_fresh_metric_gives(build):
    image, result = _faces(batch=6, size=32, seed=5), _faces(batch=6, size=32, seed=6)
    used, fresh = build(), build()
    used.update(image, result)  # other faces, forgotten by reset
    used.reset()
    used.update(result, image)
    fresh.update(result, image)
    assert used.summary() == fresh.summary()


@pytest.mark.parametrize("build", [_lpips, _fid], ids=["lpips", "fid"])
def test_two_halves_merged_equal_one_update_over_all(build):
    """merge_state applies each state's dist_reduce_fx (LPIPS: cat; FID: sum), as a DDP sync."""
    # more faces than FID's 12 features: a full-rank covariance, a well-conditioned square root
    image, result = _faces(batch=40, size=32, seed=7), _faces(batch=40, size=32, seed=8)
    first, second, whole = build(), build(), build()
    first.update(result[:15], image[:15])
    second.update(result[15:], image[15:])
    first.merge_state(second)
    whole.update(result, image)
    merged, expected = first.summary(), whole.summary()
    assert merged.keys() == expected.keys()
    for name, stat in expected.items():
        assert merged[name] == pytest.approx(stat, rel=1e-6, abs=1e-9), name


def test_the_collection_keeps_the_former_order_and_resets():
    """Rows list lpips before fid, as before; ``reset`` empties both."""
    collection = PerceptualNetworks(fid=ChannelMeans(), lpips=MeanAbsoluteDistance()).metrics()
    image = _faces(batch=4)
    collection.update(image + 0.1, image)
    assert list(collection.summary()) == ["lpips", "fid"]
    collection.reset()
    collection.update(image[:2] + 0.1, image[:2])
    assert [stat["n"] for stat in collection.summary().values()] == [2, 2]
