"""The VAE-GAN inpainting networks (IJIES 2020): a residual VAE generator and two WGAN critics.

Defaults follow the paper at 128 x 128: five stride-2 4x4 convolutions each followed by a
residual block, fully connected heads for the latent mean and log-variance, a mirrored decoder
of five (nearest upsample x2, 3x3 conv, residual block) stages with a tanh output, a global
critic on the whole image and a local critic on the 64 x 64 window around the hole. Widths and
the latent size are not given in the paper; ours (64 doubling to 512, latent 512) are
DCGAN-like choices.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from faceinpaint.models.blocks import DownBlock, Norm, UpBlock, channel_widths, norm_layer


def _bottleneck_side(image_size: int, num_layers: int) -> int:
    """Spatial side after ``num_layers`` halvings; ``image_size`` must divide evenly."""
    side = image_size // 2**num_layers
    if num_layers < 1 or side < 1 or side * 2**num_layers != image_size:
        raise ValueError(
            f"image_size {image_size} must be a multiple of 2**num_layers = 2**{num_layers}"
        )
    return side


class Encoder(nn.Module):
    """Image -> (z_mu, z_logvar): strided residual convs, then two fully connected heads.

    The spread of q(z|x) is parametrised by the log-variance: ``sigma = exp(logvar / 2)``.
    """

    def __init__(
        self,
        image_size: int = 128,
        in_channels: int = 3,
        latent_dim: int = 512,
        base_channels: int = 64,
        max_channels: int = 512,
        num_layers: int = 5,
        norm: Norm = "batch",
        negative_slope: float = 0.2,
        residual_second_norm: bool = True,
    ) -> None:
        """
        Args:
            image_size: side of the square input in pixels.
            in_channels: input channels (3 for RGB).
            latent_dim: size of z.
            base_channels: width of the first conv; doubles per layer up to ``max_channels``.
            max_channels: cap on the width.
            num_layers: stride-2 conv layers (each followed by a residual block).
            norm: normalisation inside the conv layers.
            negative_slope: LeakyReLU slope for negative inputs.
            residual_second_norm: each residual block normalises after its second convolution
                (ours: the paper does not say; False drops that norm).
        """
        super().__init__()
        side = _bottleneck_side(image_size, num_layers)
        widths = channel_widths(base_channels, max_channels, num_layers)
        self.features = nn.Sequential(
            *(
                DownBlock(c_in, c_out, norm, negative_slope, residual_second_norm)
                for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True)
            ),
            nn.Flatten(),
        )
        flat = widths[-1] * side * side
        self.mu = nn.Linear(flat, latent_dim)
        self.logvar = nn.Linear(flat, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B,C,S,S) -> z_mu (B,latent), z_logvar (B,latent)."""
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """z -> image in [-1, 1]: a linear map to the bottleneck, mirrored upsampling stages, tanh."""

    def __init__(
        self,
        image_size: int = 128,
        out_channels: int = 3,
        latent_dim: int = 512,
        base_channels: int = 64,
        max_channels: int = 512,
        num_layers: int = 5,
        norm: Norm = "batch",
        negative_slope: float = 0.2,
        residual_second_norm: bool = True,
    ) -> None:
        """
        Args:
            image_size: side of the square output in pixels.
            out_channels: output channels (3 for RGB).
            latent_dim: size of z.
            base_channels: width of the last upsampling stage (mirrors the encoder's first).
            max_channels: cap on the width.
            num_layers: upsampling stages (nearest x2, conv3x3, residual block).
            norm: normalisation inside the conv layers.
            negative_slope: LeakyReLU slope for negative inputs.
            residual_second_norm: each residual block normalises after its second convolution
                (ours: the paper does not say; False drops that norm).
        """
        super().__init__()
        self.side = _bottleneck_side(image_size, num_layers)
        widths = channel_widths(base_channels, max_channels, num_layers)[::-1]  # 512 ... 64
        self.bottleneck_channels = widths[0]
        self.project = nn.Sequential(
            nn.Linear(latent_dim, widths[0] * self.side * self.side, bias=norm == "none"),
            nn.Unflatten(1, (widths[0], self.side, self.side)),
            norm_layer(norm, widths[0]),
            nn.LeakyReLU(negative_slope),
        )
        outs = [*widths[1:], widths[-1]]
        self.upsample = nn.Sequential(
            *(
                UpBlock(c_in, c_out, norm, negative_slope, residual_second_norm)
                for c_in, c_out in zip(widths, outs, strict=True)
            )
        )
        self.to_image = nn.Sequential(nn.Conv2d(outs[-1], out_channels, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        """(B,latent) -> (B,C,S,S) in [-1, 1]."""
        return self.to_image(self.upsample(self.project(z)))


class InpaintingVAE(nn.Module):
    """The generator: encode the hole-filled image, sample z, decode a full image.

    In training mode z = mu + sigma * eps with eps ~ N(0, I) drawn on the input's device; in
    eval mode z = mu, so inference is deterministic. mu and logvar are returned in float32.
    """

    def __init__(
        self,
        image_size: int = 128,
        channels: int = 3,
        latent_dim: int = 512,
        base_channels: int = 64,
        max_channels: int = 512,
        num_layers: int = 5,
        norm: Norm = "batch",
        negative_slope: float = 0.2,
        residual_second_norm: bool = True,
    ) -> None:
        """
        Args:
            image_size: side of the square images in pixels.
            channels: image channels (3 for RGB).
            latent_dim: size of z.
            base_channels: width of the outermost conv layers.
            max_channels: cap on the width of the inner layers.
            num_layers: down- (and up-) sampling stages; the bottleneck is image_size / 2**num_layers.
            norm: normalisation inside the conv layers.
            negative_slope: LeakyReLU slope for negative inputs.
            residual_second_norm: each residual block normalises after its second convolution
                (ours: the paper does not say; False drops that norm).
        """
        super().__init__()
        sizes = (image_size, channels, latent_dim, base_channels, max_channels, num_layers)
        self.encoder = Encoder(*sizes, norm, negative_slope, residual_second_norm)
        self.decoder = Decoder(*sizes, norm, negative_slope, residual_second_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B,C,S,S) hole-filled input -> (output (B,C,S,S) in [-1,1], z_mu, z_logvar)."""
        mu, logvar = self.encoder(x)
        mu, logvar = mu.float(), logvar.float()  # sampling and the KL stay fp32 under autocast
        if self.training:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        else:
            z = mu
        return self.decoder(z), mu, logvar


class Critic(nn.Module):
    """WGAN critic: strided residual convs like the encoder, then LReLU + conv to one score.

    No sigmoid: the output is an unbounded score per image. With ``num_layers=None`` the number
    of stride-2 layers brings the image to 4 x 4 (5 at 128, 4 at 64), where the 4 x 4 head conv
    yields a single value; a smaller final map uses a head kernel of its own size, and a larger
    one averages the head's outputs.
    """

    def __init__(
        self,
        image_size: int = 128,
        in_channels: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        num_layers: int | None = None,
        norm: Norm = "batch",
        negative_slope: float = 0.2,
    ) -> None:
        """
        Args:
            image_size: side of the square input in pixels.
            in_channels: input channels (3 for RGB).
            base_channels: width of the first conv; doubles per layer up to ``max_channels``.
            max_channels: cap on the width.
            num_layers: stride-2 conv layers; None = log2(image_size / 4).
            norm: normalisation inside the conv layers ('batch' as in the paper; use 'none' or
                'instance' with a gradient penalty).
            negative_slope: LeakyReLU slope for negative inputs.
        """
        super().__init__()
        if num_layers is None:
            num_layers = max(1, round(math.log2(image_size / 4)))
        side = _bottleneck_side(image_size, num_layers)
        widths = channel_widths(base_channels, max_channels, num_layers)
        self.features = nn.Sequential(
            *(
                DownBlock(c_in, c_out, norm, negative_slope)
                for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True)
            )
        )
        self.head = nn.Sequential(
            nn.LeakyReLU(negative_slope), nn.Conv2d(widths[-1], 1, min(4, side))
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B,C,S,S) -> (B,) scores."""
        return self.head(self.features(x)).flatten(1).mean(1)


def hole_windows(mask: Tensor, size: int) -> Tensor:
    """(B, 2) int64 ``(top, left)`` of the ``size`` x ``size`` window centred on each hole's
    bounding box, clamped to lie inside the image.

    ``mask`` (B,1,H,W), 1 = hole. A box of rows [a, b] has its centre at (a + b + 1) / 2 in pixel
    edge coordinates, so ``top = floor((a + b + 1 - size) / 2)``; a 64-hole at row a gives top = a.
    A sample without a hole gets the centred window. Runs on the mask's device, no host sync.
    """
    height, width = mask.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"window size {size} exceeds the image ({height}x{width})")
    hole = mask[:, 0] > 0  # (B, H, W)
    rows = hole.any(dim=2)  # (B, H)
    cols = hole.any(dim=1)  # (B, W)

    def start(occupied: Tensor, length: int) -> Tensor:
        first = occupied.int().argmax(dim=1)
        last = length - 1 - occupied.flip(1).int().argmax(dim=1)
        empty = ~occupied.any(dim=1)
        first = torch.where(empty, torch.zeros_like(first), first)
        last = torch.where(empty, torch.full_like(last, length - 1), last)
        return torch.div(first + last + 1 - size, 2, rounding_mode="floor").clamp(0, length - size)

    return torch.stack([start(rows, height), start(cols, width)], dim=1).long()


def crop_windows(images: Tensor, corners: Tensor, size: int) -> Tensor:
    """(B,C,H,W) -> (B,C,size,size): each sample's window at ``corners`` (B,2) ``(top, left)``.

    One batched gather (differentiable w.r.t. ``images``), no per-sample loop.
    """
    batch, channels, height, width = images.shape
    offsets = torch.arange(size, device=images.device)
    rows = corners[:, 0, None] + offsets  # (B, size)
    cols = corners[:, 1, None] + offsets  # (B, size)
    flat = (rows[:, :, None] * width + cols[:, None, :]).flatten(1)  # (B, size*size)
    index = flat[:, None, :].expand(batch, channels, size * size)
    return images.flatten(2).gather(2, index).view(batch, channels, size, size)
