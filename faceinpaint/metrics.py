"""PSNR and SSIM of inpainting results, over the whole image and over the hole alone.

Definitions (every number in the project's tables follows these):

* Inputs arrive in [-1, 1] and are converted to [0, 1] by :func:`faceinpaint.batch.to_unit`
  (clamped); ``data_range`` is therefore 1.
* **PSNR** per sample: ``10 log10(data_range**2 / MSE)``, the MSE over all 3 x H x W values.
  The MSE is clamped at ``1e-10`` so identical images give a finite **100 dB**, not inf.
* **SSIM** per sample: Wang et al. (2004), computed by torchmetrics'
  ``structural_similarity_index_measure`` (Gaussian window of std ``ssim_sigma`` = 1.5, which
  torchmetrics truncates at 3.5 std: 11 x 11; K1 = 0.01, K2 = 0.03, population covariances),
  its SSIM map averaged over the channels and over the window positions that lie wholly inside
  the image ("valid": the map cropped by 5 px on each side). This is the reference MATLAB
  implementation and scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``.
* **SSIM, torchmetrics default** (``ssim_torchmetrics``): the same map, but reflection-padded
  and averaged over every pixel, as ``structural_similarity_index_measure(preds, target)``
  returns by default since torchmetrics 1.5 (Lightning-AI/torchmetrics#2721; earlier versions
  cropped the border as the valid SSIM does, hence ``torchmetrics>=1.5``). Where the hole stays off the border, the border
  windows see only known pixels, which the composite copies from the original, and it reads
  higher: 0.838 against 0.773 for the harmonic fill of the centre quarter on the 1000
  celeba-half val faces at 64 px (docs/RESULTS.md); with holes reaching the border (half
  faces, random pixels) the two agree within 0.01. Reported as an extra column, to compare with
  papers that used torchmetrics' default.
* **Hole PSNR**: the MSE averaged over the hole pixels only (sum over hole pixels x 3 channels,
  divided by 3 x the number of hole pixels), same clamp.
* **Hole SSIM**: SSIM of the crop to each sample's hole bounding box. A box side shorter than the
  window is grown to the window size, centred on the box and shifted to stay inside the image,
  with the real surrounding pixels (SSIM's window is never shrunk, so every number uses the
  same window). Images smaller than the window are rejected.
* A sample whose mask has no hole has no hole metrics: ``update`` raises ``ValueError``.
* **Raw output** (``psnr_raw``, ``ssim_raw``, ``psnr_hole_raw``, ``ssim_hole_raw``): the same four
  metrics of the method's own output before it is pasted or blended into the known pixels (the
  VAE-GAN decoder's image, the latent search's G(z)), as papers that report their network's
  "Output" beside the "Mixed" result do. The whole-image raw figures score the network's
  reconstruction of the known pixels too; in the hole a pasted result equals its raw output, a
  Poisson-blended one does not. A method that only fills the hole (a classical fill) has no
  other output: its raw figures are its result's.
* **LPIPS** and **FID** (optional, :class:`PerceptualMetrics`): torchmetrics' LPIPS network
  (AlexNet by default, lower is better) per sample, and torchmetrics' FID (torch-fidelity's
  Inception v3, 2048 features) between the results and the originals of one evaluation set.
  Their pretrained weights are downloaded once into torch hub's cache (``$TORCH_HOME``);
  without them :func:`load_perceptual_networks` raises, naming the file, never a random net.

Per-sample values are kept (``cat`` states) so the metric synchronises across DDP ranks and
:meth:`InpaintingMetrics.summary` can report spread and confidence intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torchmetrics
from torch import Tensor, nn
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.utilities.data import dim_zero_cat

from faceinpaint.batch import to_unit

COMPOSITE_METRIC_NAMES = ("psnr", "ssim", "psnr_hole", "ssim_hole", "ssim_torchmetrics")
RAW_METRIC_NAMES = ("psnr_raw", "ssim_raw", "psnr_hole_raw", "ssim_hole_raw")
METRIC_NAMES = COMPOSITE_METRIC_NAMES + RAW_METRIC_NAMES
PERCEPTUAL_METRIC_NAMES = ("lpips", "fid")
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


def gaussian_kernel_size(sigma: float) -> int:
    """Side of torchmetrics' Gaussian SSIM window: truncated at 3.5 std (11 for sigma 1.5)."""
    return int(3.5 * sigma + 0.5) * 2 + 1


# On CPU the window convolutions run faster a few samples at a time: the intermediates of a
# whole batch fall out of cache. Measured on the 2-core sandbox (shared, noisy), one thread,
# InpaintingMetrics.update on a batch of 64: 64 px 0.78 s whole vs 0.47 s in chunks of 4;
# 128 px 2.9 s vs 1.5 s. GPUs take the batch whole.
_CPU_SSIM_CHUNK = 4


def ssim_map(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tuple[Tensor, Tensor]:
    """torchmetrics' SSIM of (B,C,H,W) images in [0, data_range]: (B,) its default value and the
    (B,C,H,W) map it averages, one window centred on each pixel of the images reflection-padded
    by ``kernel // 2``. Positions at least ``kernel // 2`` from the border see no padding: the
    map there is the SSIM of the window's own pixels, whatever crop they are taken from."""
    if preds.device.type == "cpu" and preds.shape[0] > _CPU_SSIM_CHUNK:
        chunks = zip(preds.split(_CPU_SSIM_CHUNK), target.split(_CPU_SSIM_CHUNK), strict=True)
        padded, maps = zip(
            *(ssim_map(p, t, data_range, sigma, k1, k2) for p, t in chunks), strict=True
        )
        return torch.cat(padded), torch.cat(maps)
    kernel_size = gaussian_kernel_size(sigma)
    height, width = preds.shape[-2:]
    if height < kernel_size or width < kernel_size:
        raise ValueError(
            f"SSIM needs images of at least {kernel_size}x{kernel_size}, got {height}x{width}"
        )
    return structural_similarity_index_measure(
        preds,
        target,
        gaussian_kernel=True,
        sigma=sigma,
        kernel_size=kernel_size,
        data_range=data_range,
        k1=k1,
        k2=k2,
        reduction="none",
        return_full_image=True,
    )


def valid_ssim(ssim_map: Tensor, sigma: float = 1.5) -> Tensor:
    """(B,) mean of a (B,C,H,W) ``ssim_map`` over channels and the valid window positions."""
    pad = gaussian_kernel_size(sigma) // 2
    height, width = ssim_map.shape[-2:]
    return ssim_map[..., pad : height - pad, pad : width - pad].flatten(1).mean(1)


def ssim_valid_and_padded(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tuple[Tensor, Tensor]:
    """(B,) SSIM over the valid window positions and (B,) torchmetrics' default SSIM (its
    reflection-padded map averaged over every pixel) of (B,C,H,W) images in [0, data_range]."""
    padded, full_map = ssim_map(preds, target, data_range, sigma, k1, k2)
    return valid_ssim(full_map, sigma), padded


def ssim_per_sample(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """(B,) SSIM of (B,C,H,W) images in [0, data_range], "valid" window positions only."""
    return ssim_valid_and_padded(preds, target, data_range, sigma, k1, k2)[0]


def grow_spans(start: Tensor, stop: Tensor, size: int, limit: int) -> tuple[Tensor, Tensor]:
    """(B,) spans [start, stop) widened to at least ``size``, centred, then shifted into
    [0, limit); spans already that long are unchanged."""
    missing = size - (stop - start)
    grown_start = torch.minimum(start - missing // 2, torch.full_like(start, limit - size))
    grown_start = grown_start.clamp_min(0)
    short = missing > 0
    return torch.where(short, grown_start, start), torch.where(short, grown_start + size, stop)


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


def hole_ssim_from_map(ssim_map: Tensor, mask: Tensor, sigma: float = 1.5) -> Tensor:
    """(B,) SSIM of each sample's hole bounding box (grown to the window where smaller), read
    from the whole image's (B,C,H,W) ``ssim_map``: the valid positions of the box are the map's
    positions inside the box at least ``kernel // 2`` from its edges."""
    kernel_size = gaussian_kernel_size(sigma)
    pad = kernel_size // 2
    height, width = ssim_map.shape[-2:]
    top, bottom, left, right = hole_boxes(mask).to(ssim_map.device).unbind(1)  # each (B,)
    top, bottom = grow_spans(top, bottom, kernel_size, height)
    left, right = grow_spans(left, right, kernel_size, width)
    rows = torch.arange(height, device=ssim_map.device)
    cols = torch.arange(width, device=ssim_map.device)
    in_rows = (rows >= (top + pad)[:, None]) & (rows < (bottom - pad)[:, None])  # (B, H)
    in_cols = (cols >= (left + pad)[:, None]) & (cols < (right - pad)[:, None])  # (B, W)
    region = (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1).to(ssim_map.dtype)
    positions = region.flatten(1).sum(1) * ssim_map.shape[1]  # (B,) window positions x channels
    return (ssim_map * region).flatten(1).sum(1) / positions


def hole_ssim_per_sample(
    preds: Tensor,
    target: Tensor,
    mask: Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
) -> Tensor:
    """(B,) SSIM of each sample's hole bounding box, grown to the window where smaller."""
    return hole_ssim_from_map(ssim_map(preds, target, data_range, sigma)[1], mask, sigma)


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
    """PSNR/SSIM of composited results and of the raw outputs, whole image and hole only, kept
    per sample.

    See the module docstring for the exact definitions. ``compute`` returns the means, one per
    name in ``METRIC_NAMES`` (``psnr``, ``ssim``, ``psnr_hole``, ``ssim_hole``,
    ``ssim_torchmetrics`` and the ``*_raw`` four); ``summary`` adds spread and a 95% interval;
    ``per_sample`` gives the raw values (synchronised across ranks), in update order.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    psnr: list[Tensor]
    ssim: list[Tensor]
    psnr_hole: list[Tensor]
    ssim_hole: list[Tensor]
    ssim_torchmetrics: list[Tensor]
    psnr_raw: list[Tensor]
    ssim_raw: list[Tensor]
    psnr_hole_raw: list[Tensor]
    ssim_hole_raw: list[Tensor]

    def __init__(
        self,
        data_range: float = 1.0,
        ssim_sigma: float = 1.5,
        **kwargs,
    ) -> None:
        """
        Args:
            data_range: value range of the images after ``to_unit`` (1 for [0, 1]).
            ssim_sigma: standard deviation of the Gaussian SSIM window in pixels (the window's
                side is ``gaussian_kernel_size(ssim_sigma)``, 11 for 1.5).
            **kwargs: passed to ``torchmetrics.Metric`` (e.g. ``sync_on_compute``).
        """
        super().__init__(**kwargs)
        if ssim_sigma <= 0:
            raise ValueError(f"ssim_sigma must be positive, got {ssim_sigma}")
        self.data_range = data_range
        self.ssim_sigma = ssim_sigma
        for name in METRIC_NAMES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self, result: Tensor, image: Tensor, mask: Tensor, raw: Tensor | None = None
    ) -> None:
        """Add a batch.

        Args:
            result: (B,3,H,W) in [-1, 1], already composited with ``image``.
            image: (B,3,H,W) in [-1, 1], the ground truth.
            mask: (B,1,H,W), 1 = hole; every sample must have a hole.
            raw: (B,3,H,W) in [-1, 1], the method's output before compositing (the ``*_raw``
                metrics); None when the result is all the method outputs (a classical fill).
        """
        if result.shape != image.shape or result.ndim != 4 or result.shape[1] != 3:
            raise ValueError(
                f"result and image must both be (B,3,H,W), got {tuple(result.shape)} "
                f"and {tuple(image.shape)}"
            )
        if raw is not None and raw.shape != result.shape:
            raise ValueError(
                f"raw must be (B,3,H,W) = {tuple(result.shape)} like result, got {tuple(raw.shape)}"
            )
        b, _, h, w = image.shape
        if tuple(mask.shape) != (b, 1, h, w):
            raise ValueError(f"mask must be (B,1,H,W) = {(b, 1, h, w)}, got {tuple(mask.shape)}")
        dtype = torch.promote_types(image.dtype, torch.float32)
        target = to_unit(image.detach().to(dtype))
        mask = mask.detach().to(dtype)
        composite_values = self._scores(to_unit(result.detach().to(dtype)), target, mask)
        for name, values in composite_values.items():
            getattr(self, name).append(values)
        raw_values = (
            composite_values
            if raw is None
            else self._scores(to_unit(raw.detach().to(dtype)), target, mask)
        )
        for name in RAW_METRIC_NAMES:
            getattr(self, name).append(raw_values[name.removesuffix("_raw")])

    def _scores(self, preds: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """(B,) values of each name in ``COMPOSITE_METRIC_NAMES``, images in [0, 1]."""
        padded, full_map = ssim_map(preds, target, self.data_range, self.ssim_sigma)
        return {
            "psnr_hole": hole_psnr_per_sample(preds, target, mask, self.data_range),
            "ssim_hole": hole_ssim_from_map(full_map, mask, self.ssim_sigma),
            "psnr": psnr_per_sample(preds, target, self.data_range),
            "ssim": valid_ssim(full_map, self.ssim_sigma),
            "ssim_torchmetrics": padded,
        }

    def per_sample(self) -> dict[str, Tensor]:
        """(N,) values per metric, in update order (this rank's, or all ranks' inside compute)."""
        if isinstance(self.psnr, list) and not self.psnr:
            raise ValueError("InpaintingMetrics holds no samples: call update() before reading it")
        return {name: dim_zero_cat(getattr(self, name)) for name in METRIC_NAMES}

    def compute(self) -> dict[str, Tensor]:
        """Means over all samples, one per name in ``METRIC_NAMES``."""
        return {name: values.mean() for name, values in self.per_sample().items()}

    def summary(self) -> dict[str, dict[str, float]]:
        """Per metric: mean, std (n-1 denominator; 0 for one sample), max, min,
        ci95 (half-width of the normal 95% interval, 1.96 std / sqrt(n)) and n.

        Synchronises across DDP ranks like ``compute``.
        """
        with self.sync_context(should_sync=self.sync_on_compute):
            per_sample = {name: values.double() for name, values in self.per_sample().items()}
        return {name: summary_statistics(values) for name, values in per_sample.items()}


# ----------------------------------------------------------------------------- LPIPS and FID
# torchvision's ImageNet backbones of torchmetrics' LPIPS (its linear heads ship with torchmetrics)
LPIPS_BACKBONE_WEIGHTS = {
    "alex": "AlexNet_Weights",
    "vgg": "VGG16_Weights",
    "squeeze": "SqueezeNet1_1_Weights",
}


def cached_weights(url: str, what: str) -> Path:
    """The file of ``url`` in torch hub's cache (``$TORCH_HOME/hub/checkpoints``), downloaded
    there when missing; ``RuntimeError`` naming the URL and the path when it cannot be."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=True)
    except Exception as err:  # urllib, ssl and OS errors alike: no weights, no metric
        raise RuntimeError(
            f"{what} needs pretrained weights that are not in torch hub's cache and could not be "
            f"downloaded ({type(err).__name__}: {err}); download {url} to {path} (or set "
            "TORCH_HOME to a folder whose hub/checkpoints/ holds it)"
        ) from err
    return path


def lpips_network(net_type: str = "alex") -> nn.Module:
    """torchmetrics' LPIPS network (``net(a, b)`` on [-1, 1] images -> (B,1,1,1)) with its
    ImageNet backbone, fetched into torch hub's cache on first use."""
    if net_type not in LPIPS_BACKBONE_WEIGHTS:
        raise ValueError(
            f"lpips net_type must be one of {list(LPIPS_BACKBONE_WEIGHTS)}, got {net_type!r}"
        )
    import torchvision.models
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    weights = getattr(torchvision.models, LPIPS_BACKBONE_WEIGHTS[net_type]).DEFAULT
    cached_weights(weights.url, f"LPIPS ({net_type})")
    return LearnedPerceptualImagePatchSimilarity(net_type=net_type).net


def fid_network() -> nn.Module:
    """torch-fidelity's Inception v3 as torchmetrics' FID uses it: (B,3,H,W) uint8 -> (B,2048)."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as err:
        raise RuntimeError(
            "FID needs torch-fidelity: pip install torch-fidelity (or faceinpaint[metrics])"
        ) from err
    path = cached_weights(URL_INCEPTION_V3, "FID")
    return NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
    )


@dataclass
class PerceptualNetworks:
    """The networks behind the optional metrics, loaded once and shared by every method.

    ``lpips(a, b)``: (B,3,H,W) in [-1, 1] twice -> (B,...) distances, lower is more alike.
    ``fid``: (B,3,H,W) uint8 -> (B, D) features. None leaves the metric out.
    """

    lpips: nn.Module | None = None
    fid: nn.Module | None = None

    @classmethod
    def load(cls, names: tuple[str, ...] | list[str], device: torch.device) -> PerceptualNetworks:
        """Pretrained networks for ``names`` (some of ``PERCEPTUAL_METRIC_NAMES``) on ``device``."""
        unknown = [name for name in names if name not in PERCEPTUAL_METRIC_NAMES]
        if unknown:
            raise ValueError(
                f"unknown metrics {unknown}; expected some of {list(PERCEPTUAL_METRIC_NAMES)}"
            )
        return cls(
            lpips=lpips_network().to(device) if "lpips" in names else None,
            fid=fid_network().to(device) if "fid" in names else None,
        )

    def metrics(self) -> PerceptualMetrics:
        """Fresh metric states (one per method and evaluation set) over these networks."""
        return PerceptualMetrics(self.lpips, self.fid)


class PerceptualMetrics(nn.Module):
    """LPIPS per sample and FID over the set, of composited results against their originals."""

    def __init__(self, lpips: nn.Module | None, fid: nn.Module | None) -> None:
        super().__init__()
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.lpips_net = lpips
        self.lpips: list[Tensor] = []
        self.fid = None if fid is None else FrechetInceptionDistance(feature=fid, normalize=False)

    @torch.no_grad()
    def update(self, result: Tensor, image: Tensor) -> None:
        """Add a batch: ``result`` and ``image`` (B,3,H,W) in [-1, 1]."""
        if self.lpips_net is not None:
            self.lpips.append(self.lpips_net(result.clamp(-1, 1), image.clamp(-1, 1)).flatten())
        if self.fid is not None:
            self.fid = self.fid.to(image.device)
            self.fid.update(_to_uint8(image), real=True)
            self.fid.update(_to_uint8(result), real=False)

    def summary(self) -> dict[str, dict[str, float]]:
        """``lpips``: as ``summary_statistics``; ``fid``: ``{"value", "n"}`` (one number per set)."""
        out: dict[str, dict[str, float]] = {}
        if self.lpips:
            out["lpips"] = summary_statistics(torch.cat(self.lpips).double())
        if self.fid is not None:
            n = int(self.fid.fake_features_num_samples)
            if n < 2:
                raise ValueError(f"FID needs at least 2 faces per evaluation set, got {n}")
            out["fid"] = {"value": float(self.fid.compute()), "n": n}
        return out


def _to_uint8(images: Tensor) -> Tensor:
    """(B,3,H,W) in [-1, 1] -> uint8 in [0, 255], as torchmetrics' FID rounds."""
    return (to_unit(images.float()) * 255).round().to(torch.uint8)
