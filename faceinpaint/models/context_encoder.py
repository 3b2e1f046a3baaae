"""The Context Encoder's generator (Pathak et al. 2016, "Context Encoders: Feature Learning by
Inpainting"), an encoder-decoder that paints the whole image from its context.

Input: the damaged image with its hole zeroed and the mask as a fourth channel (a zero is a
colour, mid-grey, so the mask says which zeros are missing), ``(B,4,S,S)``. Output: a full
``(B,3,S,S)`` image in [-1, 1] (tanh); the caller pastes its hole into the known pixels.

Encoder: stride-2 4x4 convolutions from ``S`` down to 4 x 4, widths doubling from
``base_channels`` to ``max_channels``, BatchNorm on every layer but the first, LeakyReLU 0.2.
Bottleneck: a plain convolution, not the paper's channel-wise fully connected layer (that one
belongs to its AlexNet encoder): a 4x4 valid convolution maps the 4 x 4 map to a
``bottleneck``-d code (BatchNorm, LeakyReLU), as the authors' released 128 px inpainting
network does with its 4000-d code. Decoder: a 4x4 transposed convolution back to 4 x 4, then
stride-2 4x4 transposed convolutions mirroring the encoder's widths, BatchNorm and ReLU, a tanh
output at ``S``. The paper's network paints only the 64 x 64 centre of a 128 px image; this one
paints the whole frame, so one network serves every mask. Weights start as DCGAN's.

The adversarial discriminator is DCGAN's (:class:`faceinpaint.models.dcgan.Discriminator`): it
judges the whole composited image at ``S`` (known pixels pasted around the painted hole), which
serves holes of any shape and place; the paper's judges the painted centre alone.
"""

from __future__ import annotations

from torch import Tensor, nn

from faceinpaint.models.blocks import channel_widths
from faceinpaint.models.dcgan import LEAKY_SLOPE, init_dcgan_weights, num_resamplings

INPUT_CHANNELS = 4  # RGB with the hole zeroed, and the mask (1 = hole)


class ContextEncoderGenerator(nn.Module):
    """(B,4,S,S) context (hole zeroed, mask channel) -> (B,3,S,S) image in [-1, 1]."""

    def __init__(
        self,
        image_size: int = 128,
        base_channels: int = 64,
        max_channels: int = 512,
        bottleneck: int = 4000,
    ) -> None:
        """
        Args:
            image_size: side of the square images in pixels, a power of two >= 8.
            base_channels: width of the first encoder layer (and of the last decoder layer).
            max_channels: cap on the widths, reached at the 4 x 4 map (64 ... 512 in the paper).
            bottleneck: size of the code between encoder and decoder (4000 in the paper).
        """
        super().__init__()
        steps = num_resamplings(image_size)  # stride-2 layers between S and 4 x 4
        if bottleneck < 1:
            raise ValueError(f"bottleneck must be >= 1, got {bottleneck}")
        self.image_size = image_size
        widths = channel_widths(base_channels, max_channels, steps)  # S/2 ... 4
        encoder: list[nn.Module] = [
            nn.Conv2d(INPUT_CHANNELS, widths[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            encoder += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            ]
        encoder += [
            nn.Conv2d(widths[-1], bottleneck, 4, 1, 0, bias=False),  # (B, bottleneck, 1, 1)
            nn.BatchNorm2d(bottleneck),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        ]
        decoder: list[nn.Module] = [
            nn.ConvTranspose2d(bottleneck, widths[-1], 4, 1, 0, bias=False),  # (B, C, 4, 4)
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(widths[:0:-1], widths[-2::-1], strict=True):
            decoder += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        decoder += [nn.ConvTranspose2d(widths[0], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        self.apply(init_dcgan_weights)

    def forward(self, context: Tensor) -> Tensor:
        """(B,4,S,S) -> (B,3,S,S) in [-1, 1]."""
        expected = (INPUT_CHANNELS, self.image_size, self.image_size)
        if context.ndim != 4 or tuple(context.shape[1:]) != expected:
            raise ValueError(f"context must be (B, *{expected}), got {tuple(context.shape)}")
        return self.decoder(self.encoder(context))
