"""Known values of the VAE-GAN losses (eqs. 3-10) and of the frozen VGG extractor."""

import urllib.error

import pytest
import torch
from torch import nn

from faceinpaint.losses import vgg as vgg_module
from faceinpaint.losses.vaegan import (
    LossWeights,
    active_terms,
    critic_loss,
    feature_layer_weights,
    feature_reconstruction_loss,
    generator_adversarial_loss,
    gradient_penalty,
    kl_divergence,
)
from faceinpaint.losses.vgg import VGGFeatures

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny CPU networks: one thread


def test_kl_of_standard_normal_is_zero():
    assert kl_divergence(torch.zeros(4, 8), torch.zeros(4, 8)) == 0


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)


def test_feature_loss_hand_computed():
    # layer a: C=2, 2x2, every feature differs by 1 -> ||d||^2 = 8, L = 8 / (2*8) = 0.5
    # layer b: C=1, 1x2, differences (3, 0) -> ||d||^2 = 9, L = 9 / (2*2) = 2.25
    real = [torch.ones(1, 2, 2, 2), torch.tensor([[[[3.0, 1.0]]]])]
    fake = [torch.zeros(1, 2, 2, 2), torch.tensor([[[[0.0, 1.0]]]])]
    weights = feature_layer_weights([2, 1])
    assert weights == [25.0, 100.0]
    total, parts = feature_reconstruction_loss(real, fake, weights, ["a", "b"])
    assert parts["a"] == 0.5 and parts["b"] == 2.25
    assert total == 25.0 * 0.5 + 100.0 * 2.25


def test_feature_loss_of_x_against_x_is_zero():
    torch.manual_seed(0)
    extractor = VGGFeatures(weights="random")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    features = extractor(x)
    total, parts = feature_reconstruction_loss(
        features, extractor(x.clone()), feature_layer_weights(extractor.channels)
    )
    assert total == 0 and all(v == 0 for v in parts.values())
    assert feature_layer_weights(extractor.channels) == [100 / 64**2, 100 / 128**2, 100 / 256**2]


def test_vgg_is_frozen_in_eval_and_passes_gradients():
    extractor = VGGFeatures(weights="random")
    extractor.train()
    assert not extractor.training
    assert not any(p.requires_grad for p in extractor.parameters())
    x = torch.zeros(1, 3, 16, 16, requires_grad=True)
    features = extractor(x)
    assert [f.shape[1] for f in features] == [64, 128, 256]
    assert [f.shape[-1] for f in features] == [16, 8, 4]
    sum(f.sum() for f in features).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "variant, file", [("vgg19", "vgg19-dcbb9e9d"), ("vgg16", "vgg16-397923af")]
)
def test_vgg_download_failure_names_the_options(monkeypatch, variant, file):
    def offline(**kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(vgg_module, variant, offline)
    with pytest.raises(RuntimeError, match=f"{variant} weights .*{file}.pth.*vgg_weights"):
        VGGFeatures(weights="imagenet", variant=variant)


def test_vgg16_features_build_with_random_weights():
    extractor = VGGFeatures(("relu1_1", "relu3_3", "relu4_1"), weights="random", variant="vgg16")
    # VGG-16 (configuration D) has three convolutions in block 3, VGG-19 four
    assert len(extractor.net) == 19 and isinstance(extractor.net[15], nn.ReLU)
    assert [f.shape[1] for f in extractor(torch.zeros(1, 3, 16, 16))] == [64, 256, 512]
    with pytest.raises(ValueError, match="vgg16's .*got \\['relu3_4'\\]"):
        VGGFeatures(("relu3_4",), weights="random", variant="vgg16")
    with pytest.raises(ValueError, match="vgg_variant must be one of"):
        VGGFeatures(weights="random", variant="vgg11")


def test_conv_layer_names_tap_the_convolutions_before_their_relus():
    """The paper's "three first layers" read literally: conv1_1, conv1_2, conv2_1."""
    torch.manual_seed(0)
    extractor = VGGFeatures(("conv1_1", "conv1_2", "conv2_1"), weights="random")
    assert extractor.channels == (64, 64, 128)
    net = extractor.net
    assert len(net) == 6 and isinstance(net[5], nn.Conv2d)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    h = ((x + 1) * 0.5 - extractor.mean) / extractor.std
    conv1_1 = net[0](h)
    conv1_2 = net[2](conv1_1.relu())
    conv2_1 = net[5](net[4](conv1_2.relu()))  # max pooling, then block 2's first convolution
    features = extractor(x)
    for got, expected in zip(features, [conv1_1, conv1_2, conv2_1], strict=True):
        torch.testing.assert_close(got, expected)
    assert all((f < 0).any() for f in features)  # no ReLU applied after the tap


def test_vgg_layers_must_run_shallow_to_deep():
    with pytest.raises(ValueError, match="shallow to deep"):
        VGGFeatures(("relu1_1", "conv1_1"), weights="random")


def test_vgg_loads_a_weights_file(tmp_path):
    torch.manual_seed(1)
    source = vgg_module.load_vgg_features("random", depth=12)
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in source.state_dict().items()}, path)  # full model
    extractor = VGGFeatures(weights=str(path))
    torch.testing.assert_close(extractor.net[0].weight, source[0].weight)
    torch.save(source.state_dict(), path)  # features only
    torch.testing.assert_close(VGGFeatures(weights=str(path)).net[10].weight, source[10].weight)
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        VGGFeatures(weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="is not a vgg16 state dict"):  # block 3 differs
        VGGFeatures(("relu3_3",), weights=str(path), variant="vgg16")


def test_wgan_losses_and_label_scale():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert critic_loss(real, fake) == -0.5 - 2.0
    assert critic_loss(real, fake, label_scale=10.0) == -25.0
    assert generator_adversarial_loss(fake) == 0.5
    assert generator_adversarial_loss(fake, label_scale=10.0) == 5.0


def test_gradient_penalty_of_a_linear_critic():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False), nn.Flatten(0))
    with torch.no_grad():
        critic[1].weight.fill_(0).view(-1)[:4] = 1.0  # ||grad|| = 2 everywhere
    penalty = gradient_penalty(critic, torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2))
    torch.testing.assert_close(penalty, torch.tensor(1.0))
    penalty.backward()
    assert critic[1].weight.grad.abs().sum() > 0


def test_active_terms_follow_stage_and_skip_zero_weights():
    weights = LossWeights(kl=1, feat=1, local_adv=1, global_adv=0, landmark=1, l1=0)
    assert active_terms(1, weights) == ("kl", "feat")
    assert active_terms(2, weights) == ("kl", "feat", "local_adv")
    assert active_terms(3, weights) == ("kl", "feat", "local_adv", "landmark")
    with pytest.raises(ValueError, match=">= 0"):
        LossWeights(kl=-1)
