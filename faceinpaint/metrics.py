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
* **LPIPS** and **FID** (optional, :class:`LPIPS` and :class:`FID`): torchmetrics' LPIPS
  network (AlexNet by default, lower is better) per sample, and torchmetrics' FID (torch-fidelity's
  Inception v3, 2048 features) between the results and the originals of one evaluation set.
  Their pretrained weights are downloaded once into torch hub's cache (``$TORCH_HOME``);
  without them :func:`lpips_network` / :func:`fid_network` raise, naming the file, never a
  random net.

Per-sample values are kept (``cat`` states) so the metric synchronises across DDP ranks and
:meth:`InpaintingMetrics.summary` can report spread and confidence intervals.

**The registry.** Each metric is a ``torchmetrics.Metric`` class registered with one
:func:`registered_metric` decorator naming the :class:`MetricSpec` of each value it logs (name,
heading, unit, direction, digits, whether it is optional, whether it is a bar chart's). ``METRICS``
holds them in registration order; the eval report's columns and definitions, its bar charts, the
wandb eval table and ``faceinpaint eval --metrics`` read it, and :class:`DefaultMetrics` (every
non-optional class: what training logs as ``val/<name>`` / ``test/<name>`` and what eval scores)
and :class:`PerceptualNetworks` (the optional ones) are built from it. A new metric is its class
plus its registration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import torch
import torchmetrics
from torch import Tensor, nn
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from faceinpaint.batch import to_unit

COMPOSITE_METRIC_NAMES = ("psnr", "ssim", "psnr_hole", "ssim_hole", "ssim_torchmetrics")
RAW_METRIC_NAMES = ("psnr_raw", "ssim_raw", "psnr_hole_raw", "ssim_hole_raw")
METRIC_NAMES = COMPOSITE_METRIC_NAMES + RAW_METRIC_NAMES
MSE_FLOOR = 1e-10  # PSNR of identical images: 10 log10(1 / 1e-10) = 100 dB


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class MetricSpec:
    """How one logged metric is named, shown and compared; registered with the class computing it.

    ``optional``: computed only when asked for (it needs pretrained networks: ``faceinpaint eval
    --metrics NAME``, or a landmark checkpoint for the NME); the report shows its column only
    where a row has it. ``definition`` and ``metric`` (the class computing it; None for a value
    computed elsewhere, the NME by eval's tasks) are set by the registration.
    """

    name: str  # the key of compute()/summary(), of eval rows and of training logs (val/<name>)
    label: str  # the report's column heading without the unit, e.g. "hole PSNR"
    unit: str  # "dB"; "" for a ratio or a distance without unit
    higher_is_better: bool
    decimals: int  # digits after the point in the report
    optional: bool = False
    bar: bool = False  # one row of panels in eval's bar charts
    definition: str = ""  # the report's sentence defining it
    metric: type | None = None

    @property
    def heading(self) -> str:
        """Column heading: ``hole PSNR (dB)``, ``hole SSIM``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def arrow(self) -> str:
        """``↑`` where higher is better, ``↓`` where lower is."""
        return "↑" if self.higher_is_better else "↓"


METRICS: dict[str, MetricSpec] = {}  # name -> spec, in registration order: the report's columns

MetricClass = TypeVar("MetricClass", bound=type)


def register_metric(*specs: MetricSpec, definition: str, metric: type | None = None) -> None:
    """Add ``specs`` (the values ``metric`` logs, each defined by ``definition``) to ``METRICS``.

    A non-optional ``metric`` is built without arguments and answers ``update(result, image,
    mask, raw=None)``, ``compute()`` (name -> mean), ``summary()`` (name -> statistics) and
    ``per_sample()`` (name -> (N,)); an optional one logs one name, is built from its network,
    answers ``update(result, image)`` and ``summary()``, and its class method
    ``pretrained_network()`` loads that network.
    """
    taken = [spec.name for spec in specs if spec.name in METRICS]
    if taken:
        raise ValueError(f"metrics {taken} are already registered (by {METRICS[taken[0]].metric})")
    optional = [spec.name for spec in specs if spec.optional]
    if metric is not None and optional and len(specs) > 1:
        raise ValueError(f"an optional metric logs one name; {metric.__name__} logs {specs}")
    for spec in specs:
        METRICS[spec.name] = replace(spec, definition=definition, metric=metric)


def registered_metric(*specs: MetricSpec, definition: str) -> Callable[[MetricClass], MetricClass]:
    """Class decorator: :func:`register_metric` of ``specs``, computed by the decorated class."""

    def register(metric: MetricClass) -> MetricClass:
        register_metric(*specs, definition=definition, metric=metric)
        return metric

    return register


def default_metric_classes() -> list[type]:
    """The classes of the non-optional metrics, in registration order."""
    classes = (spec.metric for spec in METRICS.values() if not spec.optional and spec.metric)
    return list(dict.fromkeys(classes))


def optional_metric_classes() -> dict[str, type]:
    """Name -> class of the optional metrics ``--metrics`` can ask for, in registration order."""
    return {name: spec.metric for name, spec in METRICS.items() if spec.optional and spec.metric}


def in_registry_order(values: Mapping[str, object]) -> dict[str, object]:
    """``values`` (name -> anything) with the registered names first, in ``METRICS`` order."""
    order = {name: position for position, name in enumerate(METRICS)}
    return dict(sorted(values.items(), key=lambda item: order.get(item[0], len(order))))


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
    # never under autocast: in bf16 its Gaussian-window variances (E[x^2] - E[x]^2) cancel (a
    # bf16-mixed run's validation scored an embedded face with a mean-filled hole 0.06, not 0.70)
    with torch.autocast(preds.device.type, enabled=False):
        return structural_similarity_index_measure(
            preds.float(),
            target.float(),
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


INPAINTING_DEFINITION = (
    "PSNR / SSIM: the composited result (known pixels are the original's) against the original, "
    "in [0, 1], SSIM with an 11×11 Gaussian window (σ 1.5) averaged over the window positions "
    "inside the image (scikit-image, the original SSIM). Hole PSNR: the MSE over the hole pixels "
    "only. Hole SSIM: SSIM of the hole's bounding box (grown to 11 px where smaller). SSIM "
    "(torchmetrics default): torchmetrics' structural_similarity_index_measure as called by "
    "default, which averages a reflection-padded map over every pixel, border windows included; "
    "where the hole stays off the border those windows see only known, copied pixels and it reads "
    "higher (centre quarter, harmonic fill, 1000 celeba-half faces at 64 px: 0.838 against "
    "0.773), elsewhere about the same (±0.01). raw: the same metrics of the method's own output "
    "before it is pasted or blended into the known pixels (the VAE-GAN decoder's whole image, the "
    "search's G(z), an outside method's file as written; a classical fill's raw output is its "
    "result). Definitions in faceinpaint/metrics.py."
)


@registered_metric(
    MetricSpec("psnr", "PSNR", "dB", higher_is_better=True, decimals=2),
    MetricSpec("ssim", "SSIM", "", higher_is_better=True, decimals=3),
    MetricSpec("psnr_hole", "hole PSNR", "dB", higher_is_better=True, decimals=2, bar=True),
    MetricSpec("ssim_hole", "hole SSIM", "", higher_is_better=True, decimals=3, bar=True),
    MetricSpec(
        "ssim_torchmetrics", "SSIM (torchmetrics default)", "", higher_is_better=True, decimals=3
    ),
    MetricSpec("psnr_raw", "raw PSNR", "dB", higher_is_better=True, decimals=2),
    MetricSpec("ssim_raw", "raw SSIM", "", higher_is_better=True, decimals=3),
    MetricSpec("psnr_hole_raw", "raw hole PSNR", "dB", higher_is_better=True, decimals=2),
    MetricSpec("ssim_hole_raw", "raw hole SSIM", "", higher_is_better=True, decimals=3),
    definition=INPAINTING_DEFINITION,
)
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


class DefaultMetrics(torchmetrics.MetricCollection):
    """Every registered metric that is not optional, one instance of each class: what training
    logs (``val/<name>``, ``test/<name>``) and what eval scores every method with.

    ``update(result, image, mask, raw=None)`` as :meth:`InpaintingMetrics.update`; ``compute``
    (name -> mean), ``summary`` and ``per_sample`` merge the classes' answers in ``METRICS``
    order; ``reset`` and DDP sync are each metric's.
    """

    def __init__(self) -> None:
        classes = default_metric_classes()
        super().__init__({cls.__name__: cls() for cls in classes}, compute_groups=False)

    def compute(self) -> dict[str, Tensor]:
        return in_registry_order(super().compute())

    def summary(self) -> dict[str, dict[str, float]]:
        return merged_answers(self, "summary")

    def per_sample(self) -> dict[str, Tensor]:
        return merged_answers(self, "per_sample")


def merged_answers(collection: torchmetrics.MetricCollection, method: str) -> dict:
    """The dicts ``method`` of each metric of ``collection`` answers, as one, in ``METRICS`` order."""
    merged = {}
    for metric in collection.values(copy_state=False):
        merged |= getattr(metric, method)()
    return in_registry_order(merged)


NME_DEFINITION = (
    "Landmark NME: mean distance between the landmark network's points on the result and on the "
    "original, over the original's outer-eye-corner distance."
)
# computed by eval's tasks with a landmark network (faceinpaint.losses.landmark.landmark_nme)
register_metric(
    MetricSpec("nme", "landmark NME", "", higher_is_better=False, decimals=3, optional=True),
    definition=NME_DEFINITION,
)

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


class PerceptualNetworks:
    """The networks of the optional metrics asked for, loaded once and shared by every method.

    ``networks``: name of an optional registered metric -> its network, e.g. ``lpips`` ((B,3,H,W)
    in [-1, 1] twice -> (B,...) distances, lower is more alike), ``fid`` ((B,3,H,W) uint8 ->
    (B, D) features). A None network leaves its metric out.
    """

    def __init__(self, **networks: nn.Module | None) -> None:
        check_optional_metric_names(list(networks))
        self.networks = {name: net for name, net in networks.items() if net is not None}

    @classmethod
    def load(cls, names: Sequence[str], device: torch.device) -> PerceptualNetworks:
        """Pretrained networks for ``names`` (optional metrics of ``METRICS``) on ``device``."""
        classes = check_optional_metric_names(names)
        return cls(**{name: classes[name].pretrained_network().to(device) for name in names})

    def metrics(self) -> PerceptualMetrics:
        """Fresh metric states (one per method and evaluation set) over these networks."""
        classes = optional_metric_classes()
        return PerceptualMetrics(
            {
                name: metric(self.networks[name])
                for name, metric in classes.items()
                if name in self.networks
            }
        )


def check_optional_metric_names(names: Sequence[str]) -> dict[str, type]:
    """Name -> class of the optional metrics; ``ValueError`` naming any of ``names`` not one."""
    classes = optional_metric_classes()
    unknown = [name for name in names if name not in classes]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; expected some of {list(classes)}")
    return classes


class PerceptualMetrics(torchmetrics.MetricCollection):
    """The optional metrics of one method on one evaluation set, of composited results against
    their originals: ``update(result, image)``, ``summary()``; ``reset()`` and DDP sync are each
    metric's."""

    def __init__(self, metrics: Mapping[str, torchmetrics.Metric]) -> None:
        super().__init__(dict(metrics), compute_groups=False)

    def update(self, result: Tensor, image: Tensor) -> None:
        """Add a batch: ``result`` and ``image`` (B,3,H,W) in [-1, 1]."""
        self.to(image.device)
        super().update(result, image)

    def summary(self) -> dict[str, dict[str, float]]:
        """Each metric's summary (``lpips``: as ``summary_statistics``; ``fid``: ``{"value", "n"}``),
        in ``METRICS`` order."""
        return merged_answers(self, "summary")


@registered_metric(
    MetricSpec("lpips", "LPIPS", "", higher_is_better=False, decimals=3, optional=True),
    definition=(
        "LPIPS: torchmetrics' LPIPS (AlexNet) of the result against the original, lower is better."
    ),
)
class LPIPS(torchmetrics.Metric):
    """LPIPS of each composited result against its original, kept per face (``cat`` state)."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    distances: list[Tensor]

    def __init__(self, network: nn.Module, **kwargs) -> None:
        """
        Args:
            network: ``network(result, image)`` on (B,3,H,W) in [-1, 1] -> (B,...) distances
                (:func:`lpips_network`, or a stand-in in tests).
            **kwargs: passed to ``torchmetrics.Metric`` (e.g. ``sync_on_compute``).
        """
        super().__init__(**kwargs)
        self.network = network
        self.add_state("distances", default=[], dist_reduce_fx="cat")

    @classmethod
    def pretrained_network(cls) -> nn.Module:
        return lpips_network()

    def update(self, result: Tensor, image: Tensor) -> None:
        """Add a batch: ``result`` and ``image`` (B,3,H,W) in [-1, 1]."""
        self.distances.append(self.network(result.clamp(-1, 1), image.clamp(-1, 1)).flatten())

    def per_sample(self) -> Tensor:
        """(N,) distances in update order (this rank's, or all ranks' inside compute)."""
        if isinstance(self.distances, list) and not self.distances:
            raise ValueError("LPIPS holds no faces: call update() before reading it")
        return dim_zero_cat(self.distances)

    def compute(self) -> Tensor:
        """The mean distance over every face."""
        return self.per_sample().mean()

    def summary(self) -> dict[str, dict[str, float]]:
        """``{"lpips": summary_statistics}`` over every face (synchronised like ``compute``)."""
        with self.sync_context(should_sync=self.sync_on_compute):
            distances = self.per_sample().double()
        return {"lpips": summary_statistics(distances)}


@registered_metric(
    MetricSpec("fid", "FID", "", higher_is_better=False, decimals=2, optional=True),
    definition=(
        "FID: torchmetrics' FID (Inception v3, 2048 features) between the n results and their n "
        "originals, one number per row (no interval); at a few thousand faces or fewer it is "
        "biased upwards and only comparable between rows of the same n."
    ),
)
class FID(FrechetInceptionDistance):
    """torchmetrics' FID between the composited results and their originals of one evaluation set:
    its states (feature sums, sums of the features' outer products and counts, summed across DDP
    ranks), its ``reset`` and its formula; ``update`` takes both images of a batch."""

    def __init__(self, network: nn.Module, **kwargs) -> None:
        """
        Args:
            network: (B,3,H,W) uint8 -> (B, D) features (:func:`fid_network`, or a stand-in in
                tests); read ``network.num_features`` for D where it has one.
            **kwargs: passed to ``torchmetrics.Metric`` (e.g. ``sync_on_compute``).
        """
        super().__init__(feature=network, normalize=False, **kwargs)

    @classmethod
    def pretrained_network(cls) -> nn.Module:
        return fid_network()

    def update(self, result: Tensor, image: Tensor) -> None:  # type: ignore[override]
        """Add a batch: ``result`` (the fakes) and ``image`` (the reals), (B,3,H,W) in [-1, 1]."""
        super().update(_to_uint8(image), real=True)
        super().update(_to_uint8(result), real=False)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{"fid": {"value", "n"}}``: one number for the set, over its n faces (all ranks')."""
        with self.sync_context(should_sync=self.sync_on_compute):
            n = int(self.fake_features_num_samples)
        if n < 2:
            raise ValueError(f"FID needs at least 2 faces per evaluation set, got {n}")
        return {"fid": {"value": float(self.compute()), "n": n}}


def _to_uint8(images: Tensor) -> Tensor:
    """(B,3,H,W) in [-1, 1] -> uint8 in [0, 255], as torchmetrics' FID rounds."""
    return (to_unit(images.float()) * 255).round().to(torch.uint8)
