"""Shapes and invariants of the VAE-GAN networks and the local-window crop."""

import pytest
import torch
from torch import nn

from faceinpaint.models.blocks import DownBlock, ResidualBlock, UpBlock
from faceinpaint.models.vaegan import Critic, InpaintingVAE, crop_windows, hole_windows

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny CPU networks: one thread

SMALL = dict(base_channels=4, max_channels=8)


@pytest.mark.parametrize("size", [64, 128])
def test_generator_shapes(size):
    torch.manual_seed(0)
    net = InpaintingVAE(image_size=size, latent_dim=16, **SMALL)
    x = torch.rand(2, 3, size, size) * 2 - 1
    out, mu, logvar = net(x)
    assert out.shape == (2, 3, size, size)
    assert mu.shape == logvar.shape == (2, 16)
    assert mu.dtype == logvar.dtype == torch.float32
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("size, layers", [(128, 5), (64, 4), (32, 3)])
def test_critic_depth_follows_size(size, layers):
    critic = Critic(image_size=size, **SMALL)
    assert sum(isinstance(m, DownBlock) for m in critic.features) == layers
    assert critic(torch.randn(3, 3, size, size)).shape == (3,)


def test_generator_samples_in_train_and_uses_mean_in_eval():
    torch.manual_seed(0)
    net = InpaintingVAE(image_size=32, latent_dim=8, num_layers=3, **SMALL)
    x = torch.randn(2, 3, 32, 32).clamp(-1, 1)
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])
    net.train()
    assert not torch.equal(net(x)[0], net(x)[0])


def test_blocks_keep_or_scale_shape():
    x = torch.randn(2, 6, 16, 16)
    assert ResidualBlock(6)(x).shape == x.shape
    assert DownBlock(6, 10)(x).shape == (2, 10, 8, 8)
    assert UpBlock(6, 10)(x).shape == (2, 10, 32, 32)


def test_residual_block_without_second_norm_has_one_norm_and_a_biased_second_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8, 8)
    for norm in ("batch", "instance"):
        block = ResidualBlock(6, norm, second_norm=False)
        norms = [m for m in block.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
        assert len(norms) == 1 and block.body[1] is norms[0]
        first, second = (m for m in block.body if isinstance(m, nn.Conv2d))
        assert first.bias is None and second.bias is not None
        assert block.body[-1] is second  # the second convolution ends the residual branch
        assert block(x).shape == x.shape
    assert sum(isinstance(m, nn.BatchNorm2d) for m in ResidualBlock(6).modules()) == 2


def test_generator_threads_residual_second_norm_to_every_residual_block():
    def norms(second_norm):
        net = InpaintingVAE(image_size=32, num_layers=3, residual_second_norm=second_norm, **SMALL)
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 6  # 3 in the encoder, 3 in the decoder
        return [sum(isinstance(m, nn.BatchNorm2d) for m in b.modules()) for b in blocks]

    assert norms(True) == [2] * 6
    assert norms(False) == [1] * 6


def test_bad_image_size_is_rejected():
    with pytest.raises(ValueError, match="multiple of 2"):
        InpaintingVAE(image_size=100, num_layers=5, **SMALL)


def square_mask(size, boxes):
    mask = torch.zeros(len(boxes), 1, size, size)
    for i, (top, left, side) in enumerate(boxes):
        mask[i, :, top : top + side, left : left + side] = 1
    return mask


def test_hole_windows_centre_and_clamp():
    mask = square_mask(128, [(10, 70, 64), (0, 0, 1), (5, 5, 4)])
    mask = torch.cat([mask, torch.zeros(1, 1, 128, 128)])  # no hole: centred window
    corners = hole_windows(mask, 64)
    # 64-hole at (10, 70): top 10, left clamped to 128 - 64; 1-pixel hole at the corner: 0, 0;
    # 4-hole at 5..8: centre 7, window would start at -25 -> 0; empty: centred at 32.
    assert corners.tolist() == [[10, 64], [0, 0], [0, 0], [32, 32]]
    assert hole_windows(square_mask(16, [(5, 5, 4)]), 2).tolist() == [[6, 6]]


def test_crop_windows_matches_slicing_and_passes_gradients():
    images = torch.randn(3, 3, 20, 20, requires_grad=True)
    corners = torch.tensor([[0, 0], [4, 9], [10, 10]])
    crops = crop_windows(images, corners, 10)
    for i, (top, left) in enumerate(corners.tolist()):
        assert torch.equal(crops[i], images[i, :, top : top + 10, left : left + 10])
    crops.sum().backward()
    assert images.grad.sum() == 3 * 3 * 10 * 10
