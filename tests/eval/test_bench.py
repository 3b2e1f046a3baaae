"""The benchmark runner: timing discipline, FLOP counts, rows and the table."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from faceinpaint.eval import bench as bench_lib
from faceinpaint.eval.bench import Row, count_flops, markdown_table, peak_flops, time_median


def test_time_median_drops_warmup_and_takes_the_median(monkeypatch):
    calls = []
    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])  # timed runs last 1, 3, 2 s
    monkeypatch.setattr(bench_lib.time, "perf_counter", lambda: next(clock))
    median, times = time_median(lambda: calls.append(1), torch.device("cpu"), warmup=2, repeats=3)
    assert len(calls) == 5  # 2 untimed + 3 timed
    assert times == [1.0, 3.0, 2.0]
    assert median == 2.0


def test_time_median_refuses_no_repeats():
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_median(lambda: None, torch.device("cpu"), repeats=0)


def test_flops_of_a_linear_layer_forward_and_backward():
    layer = nn.Linear(8, 4, bias=False)
    x = torch.randn(3, 8, requires_grad=True)
    forward = count_flops(lambda: layer(x))
    assert forward == 2 * 3 * 8 * 4
    # backward: gradient of the input and of the weight, one matmul each
    assert count_flops(lambda: layer(x).sum().backward()) == 3 * forward


def test_peaks_are_known_for_h100_and_unknown_for_a_cpu():
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert peak_flops("AMD EPYC (2 threads)", "fp32") is None


def test_table_has_one_line_per_row_with_ratio_and_load_label():
    env = {"hardware": "cpu", "torch": "2.x", "date": "d", "command": "c", "cores": 2}
    fast = {**env, **Row("search", "cpu", "B=16", 8.0, "images/s", 4.0, "B=1").__dict__}
    fast["load_1min"] = 5.0
    slow = {**env, **Row("search", "cpu", "B=1", 2.0, "images/s").__dict__, "load_1min": 0.1}
    lines = markdown_table([fast, slow]).splitlines()
    assert len(lines) == 4
    assert "| 8 | images/s | 4x vs B=1 |" in lines[2]
    assert "machine loaded (load 5.0 on 2 cores)" in lines[2]
    assert "loaded" not in lines[3]


def test_unknown_benchmark_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown benchmarks \['speed'\]"):
        bench_lib.bench(out=str(tmp_path), only=["speed"])


def test_quick_search_rows_and_files(tmp_path):
    torch.manual_seed(0)
    rows = bench_lib.bench(
        out=str(tmp_path),
        quick=True,
        only=["search"],
        devices=["cpu"],
        warmup=0,
        repeats=1,
        dlib=False,
    )
    variants = [r["variant"] for r in rows if r["benchmark"] == "latent search"]
    assert variants == [
        "no landmark, B=1",
        "no landmark, B=2",
        "landmark network, B=1",
        "landmark network, B=2",
    ]
    b2 = next(r for r in rows if r["variant"] == "no landmark, B=2")
    b1 = next(r for r in rows if r["variant"] == "no landmark, B=1")
    assert b2["ratio"] == pytest.approx(b2["value"] / b1["value"])
    assert b2["versus"] == "no landmark, B=1"
    lines = (tmp_path / "bench.jsonl").read_text().splitlines()
    assert [json.loads(line)["variant"] for line in lines] == [r["variant"] for r in rows]
    assert all({"hardware", "torch", "date", "command"} <= set(json.loads(x)) for x in lines)
    assert (tmp_path / "bench.md").read_text().count("\n| ") == len(rows) + 1


@pytest.mark.slow
def test_quick_bench_covers_every_benchmark(tmp_path):
    rows = bench_lib.bench(out=str(tmp_path), quick=True, devices=["cpu"], warmup=1, repeats=1)
    benchmarks = {r["benchmark"] for r in rows}
    assert benchmarks >= {
        "flops",
        "vaegan train",
        "dcgan train",
        "latent search",
        "landmarks per face",
        "data pipeline",
        "achieved",
    }
    stages = sorted(
        {r["extra"]["stage"] for r in rows if r["benchmark"] == "vaegan train" and r["value"]}
    )
    assert stages == [1, 2, 3]
    flops = {r["variant"]: r["value"] for r in rows if r["benchmark"] == "flops"}
    # stage 2 adds the critic updates, stage 3 the landmark network
    assert (
        flops["vaegan stage 1 batch"]
        < flops["vaegan stage 2 batch"]
        < flops["vaegan stage 3 batch"]
    )
    data = [r for r in rows if r["benchmark"] == "data pipeline"]
    assert all(r["ratio"] is not None and r["value"] > 0 for r in data)
