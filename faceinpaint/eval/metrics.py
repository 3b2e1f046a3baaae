"""PSNR and SSIM of inpainting results, over the whole image and over the hole alone.

Definitions (every number in the project's tables follows these):

* Inputs arrive in [-1, 1] and are converted to [0, 1] by :func:`faceinpaint.batch.to_unit`
  (clamped); ``data_range`` is therefore 1.
* **PSNR** per sample: ``10 log10(data_range**2 / MSE)``, the MSE over all 3 x H x W values.
  The MSE is clamped at ``1e-10`` so identical images give a finite **100 dB**, not inf.
* **SSIM** per sample: Wang et al. (2004) with an ``ssim_kernel`` x ``ssim_kernel`` Gaussian
  window of std ``ssim_sigma`` (11, 1.5), K1 = 0.01, K2 = 0.03, population (not sample)
  covariances, averaged over the channels and over the window positions that lie wholly inside
  the image ("valid": no padding). This is the reference MATLAB implementation and
  scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``; torchmetrics >= 1.6 instead averages a
  reflection-padded map that includes the borders, so its numbers differ slightly (its map
  cropped by ``ssim_kernel // 2`` on each side gives exactly ours).
* **Hole PSNR**: the MSE averaged over the hole pixels only (sum over hole pixels x 3 channels,
  divided by 3 x the number of hole pixels), same clamp.
* **Hole SSIM**: SSIM of the crop to each sample's hole bounding box. A box side shorter than the
  window is grown to the window size, centred on the box and shifted to stay inside the image,
  with the real surrounding pixels (SSIM's window is never shrunk, so every number uses the
  same window). Images smaller than the window are rejected.
* A sample whose mask has no hole has no hole metrics: ``update`` raises ``ValueError``.

Per-sample values are kept (``cat`` states) so the metric synchronises across DDP ranks and
:meth:`InpaintingMetrics.summary` can report spread and confidence intervals.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor
from torchmetrics.utilities.data import dim_zero_cat

from faceinpaint.batch import to_unit

METRIC_NAMES = ("psnr", "ssim", "psnr_hole", "ssim_hole")
MSE_FLOOR = 1e-10  # PSNR of identical images: 10 log10(1 / 1e-10) = 100 dB


def psnr_from_mse(mse: Tensor, data_range: float = 1.0) -> Tensor:
    """PSNR in dB from a mean squared error, with the MSE clamped at ``MSE_FLOOR``."""
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(MSE_FLOOR))


def psnr_per_sample(preds: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """(B,) PSNR of (B,C,H,W) images already in [0, data_range]."""
    mse = (preds - target).pow(2).flatten(1).mean(1)
    return psnr_from_mse(mse, data_range)


def hole_psnr_per_sample(
    preds: Tensor, target: Tensor, mask: Tensor, data_range: float = 1.0
) -> Tensor:
    """(B,) PSNR over the hole pixels of (B,C,H,W) images; ``mask`` (B,1,H,W), 1 = hole, non-empty."""
    squared_error = (preds - target).pow(2) * mask  # (B, C, H, W)
    hole_values = mask.flatten(1).sum(1) * preds.shape[1]  # (B,) hole pixels x channels
    return psnr_from_mse(squared_error.flatten(1).sum(1) / hole_values, data_range)


def gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(size,) normalised 1-D Gaussian, centred on the middle tap."""
    offsets = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


# On CPU the separable window convolutions run several times faster a few samples at a time:
# the intermediates of a whole batch fall out of cache and are page-faulted in afresh. Measured
# on the 2-core sandbox, one thread, batch 64 (noisy, shared machine): 128 px 1.07-1.26 s whole
# vs 0.24-0.79 s in chunks of 4; 64 px 0.45 s vs 0.03-0.06 s. GPUs take the batch whole.
_CPU_SSIM_CHUNK = 4


def ssim_per_sample(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """(B,) SSIM of (B,C,H,W) images in [0, data_range], "valid" window positions only."""
    if preds.device.type == "cpu" and preds.shape[0] > _CPU_SSIM_CHUNK:
        chunks = zip(preds.split(_CPU_SSIM_CHUNK), target.split(_CPU_SSIM_CHUNK), strict=True)
        return torch.cat(
            [ssim_per_sample(p, t, data_range, kernel_size, sigma, k1, k2) for p, t in chunks]
        )
    if kernel_size % 2 != 1 or kernel_size < 1:
        raise ValueError(f"ssim kernel size must be odd and positive, got {kernel_size}")
    batch, channels, height, width = preds.shape
    if height < kernel_size or width < kernel_size:
        raise ValueError(
            f"SSIM needs images of at least {kernel_size}x{kernel_size}, got {height}x{width}"
        )
    window = gaussian_window(kernel_size, sigma, preds.device, preds.dtype)
    window_x = window.view(1, 1, 1, kernel_size).expand(channels, 1, 1, kernel_size)
    window_y = window.view(1, 1, kernel_size, 1).expand(channels, 1, kernel_size, 1)
    stacked = torch.cat([preds, target, preds * preds, target * target, preds * target])
    blurred = F.conv2d(F.conv2d(stacked, window_x, groups=channels), window_y, groups=channels)
    mu_p, mu_t, mean_pp, mean_tt, mean_pt = blurred.split(batch)  # each (B, C, H-k+1, W-k+1)
    var_p = mean_pp - mu_p * mu_p
    var_t = mean_tt - mu_t * mu_t
    cov = mean_pt - mu_p * mu_t
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p * mu_p + mu_t * mu_t + c1) * (var_p + var_t + c2)
    )
    return ssim_map.flatten(1).mean(1)


def _grow_span(start: int, stop: int, size: int, limit: int) -> tuple[int, int]:
    """[start, stop) widened to at least ``size``, centred, then shifted to lie in [0, limit)."""
    missing = size - (stop - start)
    if missing <= 0:
        return start, stop
    start = max(0, min(start - missing // 2, limit - size))
    return start, start + size


def hole_boxes(mask: Tensor) -> Tensor:
    """(B, 4) int64 ``(top, bottom, left, right)`` of each hole's bounding box, bottom/right exclusive.

    ``mask`` (B,1,H,W), 1 = hole; raises ``ValueError`` if a sample has no hole.
    """
    height, width = mask.shape[-2:]
    rows = mask[:, 0].amax(dim=2) > 0  # (B, H)
    cols = mask[:, 0].amax(dim=1) > 0  # (B, W)
    empty = ~rows.any(dim=1)
    if bool(empty.any()):
        raise ValueError(
            f"hole metrics need a non-empty hole; samples {empty.nonzero().flatten().tolist()} "
            "have mask == 0 everywhere"
        )
    top = rows.int().argmax(dim=1)
    bottom = height - rows.flip(1).int().argmax(dim=1)
    left = cols.int().argmax(dim=1)
    right = width - cols.flip(1).int().argmax(dim=1)
    return torch.stack([top, bottom, left, right], dim=1).long()


def hole_ssim_per_sample(
    preds: Tensor,
    target: Tensor,
    mask: Tensor,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
) -> Tensor:
    """(B,) SSIM of each sample's hole bounding box, grown to the window where smaller."""
    height, width = preds.shape[-2:]
    values = []
    for sample, (top, bottom, left, right) in enumerate(hole_boxes(mask).tolist()):
        top, bottom = _grow_span(top, bottom, kernel_size, height)
        left, right = _grow_span(left, right, kernel_size, width)
        crop = (slice(sample, sample + 1), slice(None), slice(top, bottom), slice(left, right))
        values.append(ssim_per_sample(preds[crop], target[crop], data_range, kernel_size, sigma))
    return torch.cat(values)


def summary_statistics(values: Tensor) -> dict[str, float]:
    """mean, std (n-1; 0 for one value), max, min, ci95 (1.96 std / sqrt(n)) and n of a
    non-empty (N,) tensor."""
    n = values.numel()
    std = float(values.std()) if n > 1 else 0.0
    return {
        "mean": float(values.mean()),
        "std": std,
        "max": float(values.max()),
        "min": float(values.min()),
        "ci95": 1.96 * std / math.sqrt(n),
        "n": n,
    }


class InpaintingMetrics(torchmetrics.Metric):
    """PSNR/SSIM of composited results, whole image and hole only, kept per sample.

    See the module docstring for the exact definitions. ``compute`` returns the means
    ``{"psnr", "ssim", "psnr_hole", "ssim_hole"}``; ``summary`` adds spread and a 95% interval;
    ``per_sample`` gives the raw values (synchronised across ranks), in update order.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    psnr: list[Tensor]
    ssim: list[Tensor]
    psnr_hole: list[Tensor]
    ssim_hole: list[Tensor]

    def __init__(
        self,
        data_range: float = 1.0,
        ssim_kernel: int = 11,
        ssim_sigma: float = 1.5,
        **kwargs,
    ) -> None:
        """
        Args:
            data_range: value range of the images after ``to_unit`` (1 for [0, 1]).
            ssim_kernel: side of the Gaussian SSIM window in pixels (odd).
            ssim_sigma: standard deviation of the SSIM window in pixels.
            **kwargs: passed to ``torchmetrics.Metric`` (e.g. ``sync_on_compute``).
        """
        super().__init__(**kwargs)
        if ssim_kernel % 2 != 1 or ssim_kernel < 1:
            raise ValueError(f"ssim_kernel must be odd and positive, got {ssim_kernel}")
        self.data_range = data_range
        self.ssim_kernel = ssim_kernel
        self.ssim_sigma = ssim_sigma
        for name in METRIC_NAMES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, result: Tensor, image: Tensor, mask: Tensor) -> None:
        """Add a batch.

        Args:
            result: (B,3,H,W) in [-1, 1], already composited with ``image``.
            image: (B,3,H,W) in [-1, 1], the ground truth.
            mask: (B,1,H,W), 1 = hole; every sample must have a hole.
        """
        if result.shape != image.shape or result.ndim != 4 or result.shape[1] != 3:
            raise ValueError(
                f"result and image must both be (B,3,H,W), got {tuple(result.shape)} "
                f"and {tuple(image.shape)}"
            )
        b, _, h, w = image.shape
        if tuple(mask.shape) != (b, 1, h, w):
            raise ValueError(f"mask must be (B,1,H,W) = {(b, 1, h, w)}, got {tuple(mask.shape)}")
        dtype = torch.promote_types(image.dtype, torch.float32)
        preds = to_unit(result.detach().to(dtype))
        target = to_unit(image.detach().to(dtype))
        mask = mask.detach().to(dtype)
        ssim_args = (self.data_range, self.ssim_kernel, self.ssim_sigma)
        self.psnr_hole.append(hole_psnr_per_sample(preds, target, mask, self.data_range))
        self.ssim_hole.append(hole_ssim_per_sample(preds, target, mask, *ssim_args))
        self.psnr.append(psnr_per_sample(preds, target, self.data_range))
        self.ssim.append(ssim_per_sample(preds, target, *ssim_args))

    def per_sample(self) -> dict[str, Tensor]:
        """(N,) values per metric, in update order (this rank's, or all ranks' inside compute)."""
        if isinstance(self.psnr, list) and not self.psnr:
            raise ValueError("InpaintingMetrics holds no samples: call update() before reading it")
        return {name: dim_zero_cat(getattr(self, name)) for name in METRIC_NAMES}

    def compute(self) -> dict[str, Tensor]:
        """Means over all samples: ``{"psnr", "ssim", "psnr_hole", "ssim_hole"}``."""
        return {name: values.mean() for name, values in self.per_sample().items()}

    def summary(self) -> dict[str, dict[str, float]]:
        """Per metric: mean, std (n-1 denominator; 0 for one sample), max, min,
        ci95 (half-width of the normal 95% interval, 1.96 std / sqrt(n)) and n.

        Synchronises across DDP ranks like ``compute``.
        """
        with self.sync_context(should_sync=self.sync_on_compute):
            per_sample = {name: values.double() for name, values in self.per_sample().items()}
        return {name: summary_statistics(values) for name, values in per_sample.items()}
