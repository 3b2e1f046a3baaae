"""An encoder E from a damaged face and its mask to a latent of a trained DCGAN generator.

Input: the damaged image (hole pixels zeroed) and the mask (1 = hole) stacked as 4 channels;
strided 4x4 convolutions halve the side down to 4 x 4 (BatchNorm + LeakyReLU 0.2, as in the
DCGAN discriminator), then a linear layer gives z. With ``bounded`` (a generator trained on
U[-1, 1]) z passes through tanh, so E's output lies where the latent search clips it anyway.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from faceinpaint.models.dcgan import init_dcgan_weights, num_resamplings


class LatentEncoder(nn.Module):
    """(damaged (B,3,S,S), mask (B,1,S,S)) -> z (B, latent_dim)."""

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 64,
        base_channels: int = 32,
        max_channels: int = 256,
        bounded: bool = True,
        channels: int = 3,
    ) -> None:
        """
        Args:
            latent_dim: size of the generator's z.
            image_size: side of the faces in pixels, a power of two >= 8.
            base_channels: width of the first convolution; doubles per layer up to
                ``max_channels``.
            max_channels: cap on the width.
            bounded: tanh on the output (z in (-1, 1), for a uniform prior).
            channels: image channels (the mask adds one).
        """
        super().__init__()
        steps = num_resamplings(image_size)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = [
            nn.Conv2d(channels + 1, base_channels, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = base_channels
        for _ in range(steps - 1):
            wider = min(width * 2, max_channels)
            layers += [
                nn.Conv2d(width, wider, 4, 2, 1, bias=False),
                nn.BatchNorm2d(wider),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = wider
        self.features = nn.Sequential(*layers, nn.Flatten())  # (B, width * 4 * 4)
        self.head = nn.Linear(width * 16, latent_dim)
        self.squash = nn.Tanh() if bounded else nn.Identity()
        self.apply(init_dcgan_weights)

    def forward(self, damaged: Tensor, mask: Tensor) -> Tensor:
        """(B,3,S,S) damaged faces (hole pixels are zeroed here too) and (B,1,S,S) masks ->
        (B, latent_dim)."""
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != damaged.shape[-2:]:
            raise ValueError(
                f"mask must be (B,1,H,W) matching damaged {tuple(damaged.shape)}, "
                f"got {tuple(mask.shape)}"
            )
        hole = mask.to(damaged.dtype)
        known = damaged * (1.0 - hole)
        return self.squash(self.head(self.features(torch.cat([known, hole], dim=1))))
