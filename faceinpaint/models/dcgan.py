"""DCGAN generator and discriminator (Radford et al. 2016), the latent prior they are trained on.

Generator: z (B, latent_dim) -> (B, 3, S, S) in [-1, 1] through transposed 4x4 convolutions
that double the side from 4 to S, BatchNorm + ReLU on every layer but the output, tanh out.
``activation="leaky_relu"`` puts LeakyReLU 0.2 there instead, as the thesis's DCGAN has "in the
nodes" of G as well; ReLU (DCGAN's choice) stays the default, which existing checkpoints need.
Discriminator: (B, 3, S, S) -> (B,) logits through strided 4x4 convolutions that halve the side
down to 4, BatchNorm on every layer but the input one, LeakyReLU 0.2, a 4x4 convolution to one
logit (no sigmoid: losses take logits). All weights from N(0, 0.02), BatchNorm scales from
N(1, 0.02), biases 0. ``S`` is a power of two >= 8 (64 in the paper).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

LatentPrior = Literal["uniform", "normal"]
Activation = Literal["relu", "leaky_relu"]
LEAKY_SLOPE = 0.2  # negative slope of every LeakyReLU here (DCGAN's discriminator value)


def hidden_activation(kind: Activation) -> nn.Module:
    """The generator's hidden-layer non-linearity: ``relu`` or ``leaky_relu`` (slope 0.2)."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
    raise ValueError(f"generator activation must be 'relu' or 'leaky_relu', got {kind!r}")


def num_resamplings(image_size: int) -> int:
    """Layers that double (or halve) the side between 4 x 4 and ``image_size``."""
    steps = int(math.log2(image_size)) - 2 if image_size > 0 else -1
    if steps < 1 or 4 * 2**steps != image_size:
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return steps


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation, applied with ``net.apply(init_dcgan_weights)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (B, latent_dim) -> image (B, channels, image_size, image_size) in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int = 100,
        ngf: int = 64,
        image_size: int = 64,
        channels: int = 3,
        activation: Activation = "relu",
    ) -> None:
        """
        Args:
            latent_dim: size of z.
            ngf: channels of the last hidden layer; each earlier layer doubles it (ngf * 8 at
                4 x 4 for 64 px).
            image_size: output side in pixels, a power of two >= 8.
            channels: output channels.
            activation: non-linearity of the hidden layers, ``relu`` (DCGAN) or ``leaky_relu``
                (slope 0.2, the thesis); it has no weights, so either loads the other's state.
        """
        super().__init__()
        steps = num_resamplings(image_size)
        self.latent_dim = latent_dim
        self.image_size = image_size
        width = ngf * 2 ** (steps - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),  # (B, width, 4, 4)
            nn.BatchNorm2d(width),
            hidden_activation(activation),
        ]
        for _ in range(steps - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                hidden_activation(activation),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """image (B, channels, image_size, image_size) -> (B,) real/fake logits."""

    def __init__(self, ndf: int = 64, image_size: int = 64, channels: int = 3) -> None:
        """
        Args:
            ndf: channels of the first layer; each later layer doubles it.
            image_size: input side in pixels, a power of two >= 8.
            channels: input channels.
        """
        super().__init__()
        steps = num_resamplings(image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        ]
        width = ndf
        for _ in range(steps - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image).flatten()


def sample_latent(
    prior: LatentPrior,
    num: int,
    latent_dim: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """(num, latent_dim) draws from the training prior: U[-1, 1] or N(0, 1).

    ``generator`` must live on ``device`` when given.
    """
    if prior == "uniform":
        return torch.rand(num, latent_dim, generator=generator, device=device) * 2.0 - 1.0
    if prior == "normal":
        return torch.randn(num, latent_dim, generator=generator, device=device)
    raise ValueError(f"latent prior must be 'uniform' or 'normal', got {prior!r}")
