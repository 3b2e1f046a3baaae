"""The metric registry: every logged name has a spec, and a new metric is its class plus one
registration (training logs, eval rows, the report, its bar charts and wandb's table follow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torchmetrics
from torch import Tensor

from faceinpaint import metrics
from faceinpaint.eval.dashboard import table_columns
from faceinpaint.eval.plots import plot_eval_bars
from faceinpaint.eval.report import markdown_report, markdown_table
from faceinpaint.metrics import (
    METRIC_NAMES,
    METRICS,
    DefaultMetrics,
    InpaintingMetrics,
    MetricSpec,
    PerceptualNetworks,
    register_metric,
    registered_metric,
    summary_statistics,
)

# The report's columns before the registry (eval/report.py's TABLE_COLUMNS + OPTIONAL_COLUMNS):
# (name, heading, decimals) in table order. The registry must reproduce them exactly.
FORMER_COLUMNS = [
    ("psnr", "PSNR (dB)", 2),
    ("ssim", "SSIM", 3),
    ("psnr_hole", "hole PSNR (dB)", 2),
    ("ssim_hole", "hole SSIM", 3),
    ("ssim_torchmetrics", "SSIM (torchmetrics default)", 3),
    ("psnr_raw", "raw PSNR (dB)", 2),
    ("ssim_raw", "raw SSIM", 3),
    ("psnr_hole_raw", "raw hole PSNR (dB)", 2),
    ("ssim_hole_raw", "raw hole SSIM", 3),
    ("nme", "landmark NME", 3),
    ("lpips", "LPIPS", 3),
    ("fid", "FID", 2),
]


@pytest.fixture
def registry() -> Iterator[dict[str, MetricSpec]]:
    """``METRICS``, restored after the test whatever it registered."""
    saved = dict(METRICS)
    try:
        yield METRICS
    finally:
        METRICS.clear()
        METRICS.update(saved)


def _batch(batch: int = 4, size: int = 24, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """(result, image, mask): a noisy result of a random image, a centred square hole."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    result = (image + 0.2 * torch.randn(image.shape, generator=generator)).clamp(-1, 1)
    mask = torch.zeros(batch, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
    return result, image, mask


def test_the_registry_reproduces_the_former_columns_and_lists_every_logged_name() -> None:
    assert [(s.name, s.heading, s.decimals) for s in METRICS.values()] == FORMER_COLUMNS
    assert [s.name for s in METRICS.values() if s.bar] == ["psnr_hole", "ssim_hole"]
    assert {s.name for s in METRICS.values() if not s.higher_is_better} == {"nme", "lpips", "fid"}
    assert all(METRICS[name].metric is InpaintingMetrics for name in METRIC_NAMES)
    assert metrics.optional_metric_classes() == {"lpips": metrics.LPIPS, "fid": metrics.FID}
    assert metrics.default_metric_classes() == [InpaintingMetrics]
    result, image, mask = _batch()
    default = DefaultMetrics()
    default.update(result, image, mask)
    assert list(default.compute()) == list(METRIC_NAMES), "training logs val/<name> of each"
    assert all(spec.definition for spec in METRICS.values())


def test_default_metrics_answer_exactly_what_inpainting_metrics_answer() -> None:
    """Training logs and eval rows go through DefaultMetrics: not a digit may change."""
    default, alone = DefaultMetrics(), InpaintingMetrics()
    for seed in (0, 1):
        result, image, mask = _batch(seed=seed)
        raw = torch.flip(result, dims=(3,))
        default.update(result, image, mask, raw=raw)
        alone.update(result, image, mask, raw=raw)
    assert default.summary() == alone.summary()
    assert list(default.summary()) == list(alone.summary())
    for name, value in alone.compute().items():
        assert torch.equal(default.compute()[name], value), name
    for name, values in alone.per_sample().items():
        assert torch.equal(default.per_sample()[name], values), name
    default.reset()
    with pytest.raises(ValueError, match="no samples"):
        default.summary()


def test_a_name_is_registered_once(registry: dict[str, MetricSpec]) -> None:
    with pytest.raises(ValueError, match=r"metrics \['psnr'\] are already registered"):
        register_metric(MetricSpec("psnr", "PSNR", "dB", True, 2), definition="again")


def test_an_optional_metric_logs_one_name(registry: dict[str, MetricSpec]) -> None:
    with pytest.raises(ValueError, match="an optional metric logs one name"):
        register_metric(
            MetricSpec("a", "A", "", True, 2, optional=True),
            MetricSpec("b", "B", "", True, 2, optional=True),
            definition="two",
            metric=torchmetrics.Metric,
        )


def test_one_registration_puts_a_new_metric_in_logs_rows_report_bars_and_wandb(
    registry: dict[str, MetricSpec],
) -> None:
    @registered_metric(
        MetricSpec("mae_hole", "hole MAE", "%", higher_is_better=False, decimals=4, bar=True),
        definition="Hole MAE: the toy metric of the registry's test.",
    )
    class HoleMeanAbsoluteError(torchmetrics.Metric):
        """Mean |result - image| over the hole, in percent of the [-1, 1] range, per face."""

        full_state_update = False

        def __init__(self) -> None:
            super().__init__()
            self.add_state("errors", default=[], dist_reduce_fx="cat")

        def update(self, result: Tensor, image: Tensor, mask: Tensor, raw=None) -> None:
            hole_error = ((result - image).abs() * mask).flatten(1).sum(1)
            self.errors.append(50 * hole_error / (3 * mask.flatten(1).sum(1)))

        def per_sample(self) -> dict[str, Tensor]:
            return {"mae_hole": torchmetrics.utilities.dim_zero_cat(self.errors)}

        def compute(self) -> dict[str, Tensor]:
            return {"mae_hole": self.per_sample()["mae_hole"].mean()}

        def summary(self) -> dict[str, dict[str, float]]:
            return {"mae_hole": summary_statistics(self.per_sample()["mae_hole"].double())}

    result, image, mask = _batch()
    scores = DefaultMetrics()  # what the lit modules log and eval's tasks score with
    scores.update(result, image, mask, raw=None)
    assert list(scores.compute()) == [*METRIC_NAMES, "mae_hole"]
    summary = scores.summary()
    expected = (result - image).abs()[mask.expand_as(image).bool()].mean() * 50
    assert summary["mae_hole"]["mean"] == pytest.approx(float(expected), rel=1e-6)

    rows = [
        {
            "protocol": "p",
            "mask": name,
            "method": "mean",
            "n": 4,
            "metrics": summary,
            "config": {"protocol": {}},
        }
        for name in ("center", "left")
    ]
    header, _, first = markdown_table(rows).splitlines()[2:5]
    assert header.endswith("| raw hole SSIM | hole MAE (%) |")
    assert f"| {summary['mae_hole']['mean']:.4f} ± {summary['mae_hole']['ci95']:.4f} (" in first
    assert "Hole MAE: the toy metric of the registry's test." in markdown_report("t", rows, {})
    assert table_columns(rows) == [*METRIC_NAMES, "mae_hole"]
    figure = plot_eval_bars(rows, "p")
    assert len(figure.axes) == 3 * 2, "(hole PSNR, hole SSIM, hole MAE) x (center, left)"
    titles = [axis.get_title() for axis in figure.axes]
    assert "center: hole MAE (%) ↓" in titles and "left: hole PSNR (dB) ↑" in titles


def test_one_registration_makes_an_optional_metric_askable(
    registry: dict[str, MetricSpec],
) -> None:
    """An optional metric: ``--metrics NAME`` loads its network, its column shows where a row
    has it."""

    class Ones(torch.nn.Module):
        def forward(self, first: Tensor, second: Tensor) -> Tensor:
            return torch.ones(first.shape[0])

    @registered_metric(
        MetricSpec("ones", "ones", "", higher_is_better=True, decimals=1, optional=True),
        definition="ones: one per face.",
    )
    class OnesMetric(metrics.LPIPS):
        @classmethod
        def pretrained_network(cls) -> torch.nn.Module:
            return Ones()

        def summary(self) -> dict[str, dict[str, float]]:
            return {"ones": super().summary()["lpips"]}

    result, image, _ = _batch()
    optional = PerceptualNetworks.load(["ones"], torch.device("cpu")).metrics()
    optional.update(result, image)
    summary = optional.summary()
    assert summary["ones"]["mean"] == 1.0 and summary["ones"]["n"] == 4
    plain = {name: {"mean": 1.0, "ci95": 0.0, "max": 1.0} for name in METRIC_NAMES}
    rows = [
        {"protocol": "p", "mask": "m", "method": "a", "n": 4, "metrics": plain},
        {"protocol": "p", "mask": "m", "method": "b", "n": 4, "metrics": plain | summary},
    ]
    assert markdown_table(rows).splitlines()[2].endswith("| raw hole SSIM | ones |")
    assert "| ones |" not in markdown_table(rows[:1])
    with pytest.raises(ValueError, match=r"unknown metrics \['nme'\]; expected some of "):
        PerceptualNetworks.load(["nme"], torch.device("cpu"))  # registered, computed elsewhere
