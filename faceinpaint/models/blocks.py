"""Convolutional building blocks shared by the VAE-GAN encoder, decoder and critics."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

Norm = Literal["batch", "instance", "none"]


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """A 2-d normalisation over ``channels``: BatchNorm, affine InstanceNorm, or identity."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")


def channel_widths(base: int, maximum: int, count: int) -> list[int]:
    """``count`` widths doubling from ``base`` and capped at ``maximum``: 64, 128, 256, 512, 512."""
    if base < 1 or maximum < base or count < 1:
        raise ValueError(
            f"need 1 <= base <= maximum and count >= 1, got base={base}, maximum={maximum}, "
            f"count={count}"
        )
    return [min(base * 2**i, maximum) for i in range(count)]


class ResidualBlock(nn.Module):
    """Shape-preserving residual block: conv3x3-norm-LReLU-conv3x3-norm, + input, LReLU.

    ``second_norm=False`` drops the norm after the second convolution (which then has a bias):
    conv3x3-norm-LReLU-conv3x3, + input, LReLU.
    """

    def __init__(
        self,
        channels: int,
        norm: Norm = "batch",
        negative_slope: float = 0.2,
        second_norm: bool = True,
    ) -> None:
        """
        Args:
            channels: input and output channels.
            norm: normalisation after the convolutions.
            negative_slope: slope of the LeakyReLUs for negative inputs.
            second_norm: normalise after the second convolution too (ours: the VAE-GAN paper
                does not say).
        """
        super().__init__()
        bias = norm == "none"
        second = [norm_layer(norm, channels)] if second_norm else []
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            norm_layer(norm, channels),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias or not second_norm),
            *second,
        )
        self.activation = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        """(B,C,H,W) -> (B,C,H,W)."""
        return self.activation(x + self.body(x))


class DownBlock(nn.Sequential):
    """Halve the resolution: conv4x4 stride 2, norm, LReLU, then a residual block."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: Norm = "batch",
        negative_slope: float = 0.2,
        residual_second_norm: bool = True,
    ) -> None:
        """
        Args:
            in_channels: input channels.
            out_channels: output channels.
            norm: normalisation after each convolution.
            negative_slope: LeakyReLU slope for negative inputs.
            residual_second_norm: the residual block normalises after its second convolution.
        """
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=norm == "none"),
            norm_layer(norm, out_channels),
            nn.LeakyReLU(negative_slope),
            ResidualBlock(out_channels, norm, negative_slope, residual_second_norm),
        )


class UpBlock(nn.Sequential):
    """Double the resolution: nearest upsample x2, conv3x3, norm, LReLU, then a residual block."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: Norm = "batch",
        negative_slope: float = 0.2,
        residual_second_norm: bool = True,
    ) -> None:
        """
        Args:
            in_channels: input channels.
            out_channels: output channels.
            norm: normalisation after each convolution.
            negative_slope: LeakyReLU slope for negative inputs.
            residual_second_norm: the residual block normalises after its second convolution.
        """
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm == "none"),
            norm_layer(norm, out_channels),
            nn.LeakyReLU(negative_slope),
            ResidualBlock(out_channels, norm, negative_slope, residual_second_norm),
        )
