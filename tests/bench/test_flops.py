"""FLOP accounting of the bench: a timed row's achieved FLOP/s against FlopCounterMode on a real
fit, the measured roofline, and the paper-run estimate."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from faceinpaint.bench.dcgan import build_dcgan
from faceinpaint.bench.flops import (
    ASSUMED_MFU,
    achieved_rows,
    bench_flops,
    paper_run_flops,
    paper_run_rows,
)
from faceinpaint.bench.peak import bench_peak, matmul_flops, measured_peaks
from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import paper_sizes, quick_sizes, synthetic_batch
from faceinpaint.bench.training import fit_once
from faceinpaint.bench.vaegan import build_vaegan

CPU = torch.device("cpu")


def _fit_flops(module, batch, batches: int) -> int:
    """FLOPs (matmuls and convolutions) of ``batches`` training batches of a real Lightning fit."""
    with FlopCounterMode(display=False) as counter:
        fit_once(module, batch, CPU, "32-true", warmup=0, timed=batches)
    return int(counter.get_total_flops())


@pytest.mark.parametrize("stage", [1, 2])
def test_vaegan_achieved_flops_match_a_counted_fit(stage):
    sizes = quick_sizes()
    batch_size = sizes.flops_batch
    rows = list(bench_flops(CPU, sizes))
    torch.manual_seed(0)
    module = build_vaegan(sizes, stage, compiled=False)
    cycle = 1 if stage == 1 else module.critic.n_critic
    # one generator update of Algorithm 1: `cycle` batches, the last with the generator update
    counted = _fit_flops(
        module, synthetic_batch(batch_size, sizes.vaegan["image_size"], CPU), cycle
    )
    seconds_per_update = 0.5
    timed = Row(
        "vaegan train",
        "cpu",
        "fp32 eager",
        batch_size * cycle / seconds_per_update,  # images/s as bench_vaegan reports it
        "images/s",
        extra={"stage": stage, "batch": batch_size, "batches_per_update": cycle},
    )
    (achieved,) = achieved_rows([*rows, timed], "cpu")
    assert achieved.value * 1e12 == pytest.approx(counted / seconds_per_update, rel=1e-6)


def test_dcgan_achieved_flops_match_a_counted_fit():
    sizes = quick_sizes()
    batch_size = sizes.flops_batch
    rows = [r for r in bench_flops(CPU, sizes) if r.variant == "dcgan, per image"]
    counted = _fit_flops(
        build_dcgan(sizes), synthetic_batch(batch_size, sizes.dcgan["image_size"], CPU), 1
    )
    timed = Row("dcgan train", "cpu", "fp32 eager", batch_size / 0.25, "images/s")
    (achieved,) = achieved_rows([*rows, timed], "cpu")
    assert achieved.value * 1e12 == pytest.approx(counted / 0.25, rel=1e-6)


def test_achieved_rows_divide_by_the_peak_measured_in_the_run():
    peak = Row(
        "peak",
        "cpu",
        "fp32 matmul 64, before",
        1.0,
        "TFLOP/s",
        extra={"precision": "fp32", "rounds": [1e11, 2e11, 3e11]},
    )
    after = Row(
        "peak",
        "cpu",
        "fp32 matmul 64, after",
        1.0,
        "TFLOP/s",
        extra={"precision": "fp32", "rounds": [4e11, 5e11]},
    )
    assert measured_peaks([peak, after]) == {"fp32": 3e11}
    flops = Row(
        "flops",
        "cpu",
        "dcgan, per image",
        1.0,
        "GFLOP",
        extra={"key": ("dcgan",), "flops_per_update_per_image": 1e9},
    )
    timed = Row("dcgan train", "cpu", "fp32 eager", 150.0, "images/s", 100.0, 200.0, 3)
    (achieved,) = achieved_rows([peak, after, flops, timed], "some cpu")
    assert achieved.value == pytest.approx(0.15)
    assert (achieved.low, achieved.high) == (pytest.approx(0.1), pytest.approx(0.2))
    assert achieved.extra["mfu"] == pytest.approx(0.5)
    assert "50% of the measured fp32 matmul peak (0.3 TFLOP/s)" in achieved.note
    (unmeasured,) = achieved_rows([flops, timed], "some cpu")
    assert unmeasured.extra["mfu"] is None and "no fp32 peak measured" in unmeasured.note


def test_peak_rows_time_each_precision_and_count_their_flops():
    rows = list(bench_peak(CPU, 64, repeats=2, products=2))
    assert [r.extra["precision"] for r in rows] == ["fp32", "bf16"]
    for row in rows:
        assert len(row.extra["rounds"]) == 2 and row.value > 0
        assert row.low <= row.value <= row.high
    assert matmul_flops(64, 2) == 2 * 2 * 64**3


def test_paper_run_needs_the_papers_sizes_and_uses_a_measured_mfu_over_the_assumed():
    counts = {
        ("vaegan", 1): 1e12,
        ("vaegan", 2): 2e12,
        ("vaegan", 3): 3e12,
        ("dcgan",): 1e9,
        ("search", "no landmark"): 1e9,
    }
    assert paper_run_flops(counts, quick_sizes()) == {}
    runs = paper_run_flops(counts, paper_sizes(CPU))
    # 15000/10000/15000 updates at batch 16
    assert runs["vaegan"][0] == pytest.approx(16 * (15000 * 1e12 + 10000 * 2e12 + 15000 * 3e12))
    assert runs["dcgan"][0] == pytest.approx(25 * 162_770 * 1e9)
    assert runs["search"][0] == pytest.approx(500 * 1000 * 1e9)
    flop_rows = [
        Row("flops", "cuda", "x", 0.0, "GFLOP", extra={"key": key, "flops": value})
        for key, value in counts.items()
    ]
    measured = Row(
        "achieved",
        "cuda",
        "vaegan train, bf16 eager",
        1.0,
        "TFLOP/s",
        extra={
            "source": "vaegan train",
            "hardware": "NVIDIA H100 80GB HBM3",
            "precision": "bf16",
            "datasheet_mfu": 0.4,
        },
    )
    rows = {
        (r.extra["path"], r.extra["gpu"]): r
        for r in paper_run_rows([*flop_rows, measured], paper_sizes(CPU), "cuda")
    }
    assert rows[("vaegan", "H100")].extra["mfu"] == 0.4
    assert "measured in this run" in rows[("vaegan", "H100")].note
    assert rows[("vaegan", "H200")].extra["mfu"] == ASSUMED_MFU
    assert "assumed, not measured" in rows[("dcgan", "H100")].note
    hours = runs["dcgan"][0] / (ASSUMED_MFU * 989e12) / 3600
    assert rows[("dcgan", "H100")].value == pytest.approx(hours)
