"""The DCGAN networks: the generator's hidden non-linearity option."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faceinpaint.lit.dcgan import DCGANModule
from faceinpaint.models.dcgan import Generator


def _nonlinearities(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]


def test_generator_leaky_relu_option_keeps_the_weights_and_changes_the_function():
    torch.manual_seed(0)
    relu = Generator(8, ngf=4, image_size=16)
    leaky = Generator(8, ngf=4, image_size=16, activation="leaky_relu")
    assert [type(m) for m in _nonlinearities(relu)] == [nn.ReLU] * 2
    assert [(type(m), m.negative_slope) for m in _nonlinearities(leaky)] == [
        (nn.LeakyReLU, 0.2)
    ] * 2
    leaky.load_state_dict(relu.state_dict())  # the same parameters and buffers
    z = torch.rand(4, 8) * 2 - 1
    relu.eval(), leaky.eval()
    assert not torch.allclose(relu(z), leaky(z))
    with pytest.raises(ValueError, match="'relu' or 'leaky_relu'"):
        Generator(8, ngf=4, image_size=16, activation="elu")


def test_inpainter_defaults_to_relu_also_for_checkpoints_without_the_option(tmp_path):
    options = dict(latent_dim=8, ngf=4, ndf=4, image_size=16, num_samples=4)
    leaky = DCGANModule(generator_activation="leaky_relu", **options)
    assert {type(m) for m in _nonlinearities(leaky.generator)} == {nn.LeakyReLU}
    assert leaky.hparams.generator_activation == "leaky_relu"

    path = tmp_path / "before-the-option.ckpt"
    torch.save(
        {
            "state_dict": DCGANModule(**options).state_dict(),
            "hyper_parameters": options,  # as written before generator_activation existed
            "pytorch-lightning_version": "2.6.0",
        },
        path,
    )
    loaded = DCGANModule.load_from_checkpoint(path)
    assert {type(m) for m in _nonlinearities(loaded.generator)} == {nn.ReLU}
