"""A compact U-Net that predicts the 68 landmark heatmaps and their soft-argmax coordinates.

Pure ``nn.Module`` (no Lightning): other models load it with ``LandmarkNet.from_checkpoint`` and
use it, frozen, inside their losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceinpaint.io import atomic_write
from faceinpaint.landmarks.heatmaps import soft_argmax
from faceinpaint.landmarks.ibug import NUM_POINTS
from faceinpaint.safe_load import load_without_code

# Key under which a checkpoint stores the network alone: {"config": init kwargs, "state_dict": ...}.
CHECKPOINT_KEY = "landmark_net"


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class LandmarkNet(nn.Module):
    """U-Net: encoder halving the resolution at each of ``len(widths)`` levels, decoder with skips.

    Args:
        widths: channels per encoder level; level ``i`` runs at 1 / 2**(i+1) of the input size.
        heatmap_stride: input pixels per heatmap cell (2 = maps at half the input size); a power
            of two between 2 and 2**len(widths).
        num_points: landmarks predicted.
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 48, 64, 96),
        heatmap_stride: int = 2,
        num_points: int = NUM_POINTS,
    ) -> None:
        super().__init__()
        widths = list(widths)
        out_level = heatmap_stride.bit_length() - 2
        if heatmap_stride < 2 or heatmap_stride & (heatmap_stride - 1) or out_level >= len(widths):
            raise ValueError(
                f"heatmap_stride must be a power of two in [2, {2 ** len(widths)}], got {heatmap_stride}"
            )
        self.config = {
            "widths": widths,
            "heatmap_stride": heatmap_stride,
            "num_points": num_points,
        }
        self.heatmap_stride = heatmap_stride
        self.out_level = out_level
        channels = [3, *widths]
        self.down = nn.ModuleList(
            nn.Sequential(
                _conv(channels[i], channels[i + 1], stride=2),
                _conv(channels[i + 1], channels[i + 1]),
            )
            for i in range(len(widths))
        )
        self.lateral = nn.ModuleList(
            nn.Conv2d(widths[i + 1], widths[i], 1) for i in range(out_level, len(widths) - 1)
        )
        self.up = nn.ModuleList(
            _conv(widths[i], widths[i]) for i in range(out_level, len(widths) - 1)
        )
        self.head = nn.Conv2d(widths[out_level], num_points, 1)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(B,3,H,W)`` [-1,1] -> heatmap logits ``(B,K,H/s,W/s)``, coordinates ``(B,K,2)`` in input pixels."""
        height, width = image.shape[-2:]
        factor = 2 ** len(self.down)
        if image.ndim != 4 or height % factor or width % factor:
            raise ValueError(
                f"image must be (B,3,H,W) with H and W multiples of {factor}, got {tuple(image.shape)}"
            )
        skips = []
        x = image
        for down in self.down:
            x = down(x)
            skips.append(x)
        for i in reversed(range(self.out_level, len(self.down) - 1)):
            j = i - self.out_level
            x = F.interpolate(
                self.lateral[j](x), scale_factor=2.0, mode="bilinear", align_corners=False
            )
            x = self.up[j](x + skips[i])
        logits = self.head(x).float()  # (B, K, H/s, W/s); fp32 also under bf16 autocast
        return logits, soft_argmax(logits, (height, width))

    def checkpoint_entry(self) -> dict:
        """What ``from_checkpoint`` reads: init kwargs and weights."""
        return {"config": dict(self.config), "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, map_location: str | torch.device = "cpu"
    ) -> LandmarkNet:
        """The network from a Lightning checkpoint of ``LandmarkModule`` or a file from ``save``, in eval mode."""
        # no code run (MaskSpec, which a Lightning checkpoint's DataModule settings may hold, is
        # allow-listed in faceinpaint.data.masks)
        checkpoint = load_without_code(path, map_location)
        if CHECKPOINT_KEY not in checkpoint:
            raise KeyError(
                f"{str(path)!r} holds no {CHECKPOINT_KEY!r} entry (keys: {sorted(checkpoint)}); "
                "expected a checkpoint written by faceinpaint.lit.landmarks.LandmarkModule"
            )
        entry = checkpoint[CHECKPOINT_KEY]
        net = cls(**entry["config"])
        net.load_state_dict(entry["state_dict"])
        return net.eval()

    def save(self, path: str | Path) -> None:
        """Write the network alone, loadable with ``from_checkpoint``."""
        with atomic_write(path, "wb") as handle:
            torch.save({CHECKPOINT_KEY: self.checkpoint_entry()}, handle)
