"""The benchmark suite: FLOP counts, rows, the table printed as it goes, the extrapolations."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from faceinpaint.bench import search as search_lib
from faceinpaint.bench import suite
from faceinpaint.bench import vaegan as vaegan_lib
from faceinpaint.bench.flops import count_flops
from faceinpaint.bench.rows import Row, markdown_table, peak_flops
from faceinpaint.bench.sizes import (
    PAPER_DCGAN,
    PAPER_VAEGAN,
    paper_sizes,
    quick_sizes,
    sized_by_dcgan_config,
)
from faceinpaint.losses.vaegan import CriticSettings


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


def test_table_has_one_line_per_row_with_spread_and_load_label():
    env = {"hardware": "cpu", "torch": "2.x", "date": "d", "command": "c", "cores": 2}
    loaded = {**env, **Row("search", "cpu", "B=16", 8.0, "images/s", 7.0, 9.5, 3).__dict__}
    loaded["load_1min"] = 5.0
    idle = {**env, **Row("search", "cpu", "B=1", 2.0, "images/s").__dict__, "load_1min": 0.1}
    lines = markdown_table([loaded, idle]).splitlines()
    assert len(lines) == 4
    assert "| B=16 | 8 | 7 | 9.5 | 3 | images/s | 5.0 |" in lines[2]
    assert "machine loaded (load 5.0 on 2 cores)" in lines[2]
    assert "loaded" not in lines[3]


def test_the_short_cpu_run_keeps_the_papers_models():
    cpu = torch.device("cpu")
    for sizes in (paper_sizes(cpu), paper_sizes(cpu, full=True)):
        assert sizes.vaegan == PAPER_VAEGAN and sizes.dcgan == PAPER_DCGAN
        assert sizes.candidates == 64
    assert paper_sizes(cpu).search_iterations < paper_sizes(cpu, full=True).search_iterations


def test_curriculum_minutes_extrapolate_the_stage_rows(monkeypatch):
    seconds = {1: 1.0, 2: 4.0, 3: 5.0}  # per generator update at batch 2, per stage
    timed_batches = {}

    def fake_fits(modules, batch, device, rounds, warmup, timed):
        stage = next(iter(modules.values()))[0].stage_for_test
        timed_batches[stage] = timed
        return {name: [seconds[stage]] * rounds for name in modules}

    def fake_build(sizes, stage, compiled):
        module = torch.nn.Module()
        module.stage_for_test = stage
        module.critic = CriticSettings(n_critic=5)
        return module

    monkeypatch.setattr(vaegan_lib, "interleaved_fits", fake_fits)
    monkeypatch.setattr(vaegan_lib, "build_vaegan", fake_build)
    sizes = replace(quick_sizes(), vaegan_batches=(2,))
    rows = list(vaegan_lib.bench_vaegan(torch.device("cpu"), sizes, repeats=2, compile_cpu=False))
    # stage 1: a batch per generator update; stages 2-3: n_critic batches (WGAN Algorithm 1)
    assert timed_batches == {1: 1, 2: 5, 3: 5}
    curriculum = next(r for r in rows if r.benchmark == "vaegan curriculum (extrapolated)")
    # (15000 x 1 + 10000 x 4 + 15000 x 5) s at batch 2, x 8 for batch 16, in minutes
    assert curriculum.value == pytest.approx((15000 + 40000 + 75000) * 8 / 60)
    images = [r.value for r in rows if r.benchmark == "vaegan train" and r.variant == "fp32 eager"]
    assert images == [2.0, 2.5, 2.0]  # training images per second: 2, 10/4, 10/5


def test_search_rows_take_iterations_from_the_difference_and_pair_ratios(monkeypatch):
    k = quick_sizes().search_iterations
    # per round: T_0 and T_K of each variant; round 2 is slowed by load for every variant, and
    # its T_0 so much that only the fastest T_0 stands for the set-up (not round 2's)
    t0 = {"no landmark": [1.0, 2.0], "landmark network": [1.0, 2.0]}
    per_it = {"no landmark": [0.1, 0.2], "landmark network": [0.12, 0.24]}

    def fake_interleave(fns, device, warmup, repeats):
        out = {}
        for name in fns:
            label, images, iterations = name.split(", ")
            base, step = t0[label], per_it[label]
            k_ = int(iterations.removeprefix("K="))
            out[name] = [a + k_ * s for a, s in zip(base, step, strict=True)]
            if k_ == 0:
                out[name][1] = 50.0  # a burst of load during round 2's T_0
        return out

    monkeypatch.setattr(search_lib, "interleave", fake_interleave)
    monkeypatch.setattr(search_lib, "native_bf16", lambda device: False)
    sizes = replace(quick_sizes(), search_images=(1,))
    rows = list(search_lib.bench_search(torch.device("cpu"), sizes, 0, 2, with_dlib=False))
    plain = next(r for r in rows if r.variant == "no landmark, B=1")
    # (T_K - min T_0) / K per round: 0.1 s, then (2 + 0.4 - 1) / 2 = 0.7 s under the load
    per_iteration = [
        (a + k * s - 1.0) / k for a, s in zip(t0["no landmark"], per_it["no landmark"], strict=True)
    ]
    assert per_iteration == pytest.approx([0.1, 0.7])
    assert plain.extra["ms_per_iteration"] == pytest.approx(1e3 * sum(per_iteration) / 2)
    # images/s at 1000 iterations: 1 / (min T_0 + 1000 x per iteration), per round
    slow, fast = 1 + 1000 * max(per_iteration), 1 + 1000 * min(per_iteration)
    assert (plain.low, plain.high) == pytest.approx((1 / slow, 1 / fast))
    ratio = next(r for r in rows if r.variant == "landmark network / no landmark, B=1")
    network = [
        (a + k * s - 1.0) / k
        for a, s in zip(t0["landmark network"], per_it["landmark network"], strict=True)
    ]
    expected = sorted(a / b for a, b in zip(network, per_iteration, strict=True))
    assert (ratio.low, ratio.high) == pytest.approx((expected[0], expected[1]))
    assert k == 2


def test_unknown_benchmark_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown benchmarks \['speed'\]"):
        suite.bench(out=str(tmp_path), only=["speed"])


@pytest.mark.parametrize("native_bf16", [False, True])
def test_quick_search_rows_and_files(tmp_path, capsys, monkeypatch, native_bf16):
    monkeypatch.setattr(search_lib, "native_bf16", lambda device: native_bf16)
    torch.manual_seed(0)
    rows = suite.bench(
        out=str(tmp_path),
        quick=True,
        only=["search"],
        devices=["cpu"],
        warmup=0,
        repeats=1,
        dlib=False,
    )
    variants = [r["variant"] for r in rows if r["benchmark"].startswith("latent search")]
    bf16 = native_bf16  # the first network's search again under bf16 autocast
    assert variants == [
        "no landmark, B=1",
        "no landmark, B=2",
        "landmark network, B=1",
        "landmark network, B=2",
        *(["bf16 search, landmark network, B=1", "bf16 search, landmark network, B=2"] * bf16),
        "B=2 / B=1 per-image rate, no landmark",
        "landmark network / no landmark, B=1",
        "landmark network / no landmark, B=2",
        "B=2 / B=1 per-image rate, landmark network",
        *(
            [
                "bf16 / fp32, landmark network, B=1",
                "B=2 / B=1 per-image rate, bf16 search, landmark network",
                "bf16 / fp32, landmark network, B=2",
            ]
            * bf16
        ),
    ]
    assert all(r["n"] == 1 and r["low"] <= r["value"] <= r["high"] for r in rows)
    lines = (tmp_path / "bench.jsonl").read_text().splitlines()
    assert [json.loads(line)["variant"] for line in lines] == [r["variant"] for r in rows]
    assert all({"hardware", "torch", "date", "command"} <= set(json.loads(x)) for x in lines)
    assert (tmp_path / "bench.md").read_text().count("\n| ") == len(rows) + 1
    assert capsys.readouterr().out.count("\n| ") == len(rows) + 1  # the same table, printed


def test_rows_are_written_and_printed_as_they_arrive(tmp_path, monkeypatch, capsys):
    def one_row_then_fail(*args, **kwargs):
        yield Row("flops", "cpu", "first", 1.0, "GFLOP")
        raise RuntimeError("cut here")

    monkeypatch.setattr("faceinpaint.bench.flops.bench_flops", one_row_then_fail)
    with pytest.raises(RuntimeError, match="cut here"):
        suite.bench(out=str(tmp_path), only=["flops"], devices=["cpu"])
    assert [
        json.loads(x)["variant"] for x in (tmp_path / "bench.jsonl").read_text().splitlines()
    ] == ["first"]
    assert "| cpu | flops | first | 1 |" in capsys.readouterr().out


@pytest.mark.slow
def test_quick_bench_covers_every_benchmark(tmp_path):
    rows = suite.bench(out=str(tmp_path), quick=True, devices=["cpu"], warmup=1, repeats=1)
    benchmarks = {r["benchmark"] for r in rows}
    assert benchmarks >= {
        "flops",
        "vaegan train",
        "dcgan train",
        "latent search",
        "search time-to-quality",
        "landmarks per face",
        "data pipeline",
        "achieved",
        "inpaint per photo",
    }
    stages = sorted(
        {r["extra"]["stage"] for r in rows if r["benchmark"] == "vaegan train" and r["value"]}
    )
    assert stages == [1, 2, 3]
    flops = {r["variant"]: r["value"] for r in rows if r["benchmark"] == "flops"}
    # stage 2 adds the critic updates, stage 3 the landmark network
    assert (
        flops["vaegan stage 1, per image"]
        < flops["vaegan stage 2, per image"]
        < flops["vaegan stage 3, per image"]
    )
    data = [r for r in rows if r["benchmark"] == "data pipeline"]
    assert len(data) == 2 and all(
        r["value"] > 0 and "images/s training consumed" in r["note"] for r in data
    )


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_the_search_times_the_landmark_net_of_the_thesis_config():
    thesis = yaml.safe_load((CONFIGS / "dcgan" / "celeba-half.yaml").read_text())
    run = Path(thesis["model"]["init_args"]["landmark_checkpoint"]).parent.name
    (landmarks,) = [
        c
        for c in (CONFIGS / "landmarks").glob("*.yaml")
        if yaml.safe_load(c.read_text())["trainer"]["logger"]["init_args"]["name"] == run
    ]
    label, net = search_lib.landmark_net(landmarks)
    terms = search_lib.landmark_terms(with_dlib=False)
    assert list(terms) == ["no landmark", "landmark network"]
    assert terms["landmark network"].net.config == net.config
    assert label == "landmark network s4 w8-16-32-48-64"


def test_landmark_nets_from_configs_and_checkpoints(tmp_path):
    from faceinpaint.landmarks.network import LandmarkNet

    LandmarkNet(widths=[8, 16, 16, 32], heatmap_stride=4).save(tmp_path / "net.ckpt")
    label, net = search_lib.landmark_net(tmp_path / "net.ckpt")
    assert label == "landmark network s4 w8-16-16-32" and net.heatmap_stride == 4
    label, _ = search_lib.landmark_net(CONFIGS / "landmarks" / "celeba-half-64.yaml")
    assert label == "landmark network s2 w16-32-48-64-96"
    with pytest.raises(ValueError, match="is not a landmarks config"):
        search_lib.landmark_net(CONFIGS / "dcgan" / "celeba-half.yaml")
    terms = search_lib.landmark_terms(
        False, [CONFIGS / "landmarks" / "celeba-half-64.yaml", tmp_path / "net.ckpt"]
    )
    assert list(terms) == [
        "no landmark",
        "landmark network s2 w16-32-48-64-96",
        "landmark network s4 w8-16-16-32",
    ]
    with pytest.raises(ValueError, match="a second 'landmark network s4 w8-16-16-32'"):
        search_lib.landmark_terms(False, [tmp_path / "net.ckpt", tmp_path / "net.ckpt"])


def test_a_dcgan_config_sizes_the_search():
    sizes = sized_by_dcgan_config(
        paper_sizes(torch.device("cpu")), CONFIGS / "dcgan/celeba-half-cpu.yaml"
    )
    assert sizes.dcgan == dict(latent_dim=100, ngf=48, ndf=32, image_size=64)
    assert sizes.candidates == 16 and "celeba-half-cpu.yaml" in sizes.label
    with pytest.raises(ValueError, match="is not a DCGAN config"):
        sized_by_dcgan_config(quick_sizes(), CONFIGS / "landmarks" / "celeba-half-64.yaml")


def test_quick_search_rows_of_two_landmark_nets(tmp_path):
    rows = suite.bench(
        out=str(tmp_path),
        quick=True,
        only=["search"],
        devices=["cpu"],
        repeats=1,
        dlib=False,
        landmark_nets=[
            str(CONFIGS / "landmarks" / f"{n}.yaml") for n in ("smoke", "celeba-half-64")
        ],
    )
    ratios = [r["variant"] for r in rows if r["benchmark"] == "latent search ratio"]
    for net in ("landmark network s2 w8-16-16-32", "landmark network s2 w16-32-48-64-96"):
        assert f"{net} / no landmark, B=1" in ratios and f"{net} / no landmark, B=2" in ratios
        assert f"B=2 / B=1 per-image rate, {net}" in ratios


def test_the_run_prints_and_writes_its_wall_time(tmp_path, capsys):
    records = suite.bench(out=str(tmp_path), quick=True, only=["peak"], devices=["cpu"])
    assert {r["extra"]["precision"] for r in records} == {"fp32", "bf16"}
    assert "Wall time: " in capsys.readouterr().out
    assert "Wall time: " in (tmp_path / "bench.md").read_text()


def test_a_photo_is_inpainted_per_round_after_start_up(tmp_path):
    (row,) = suite.bench(out=str(tmp_path), quick=True, only=["photo"], devices=["cpu"])
    assert (row["benchmark"], row["unit"], row["n"]) == ("inpaint per photo", "s/photo", 2)
    assert 0 < row["low"] <= row["value"] <= row["high"]
    assert row["note"].startswith("800x600 photo, 64 px frame")


@pytest.mark.parametrize("native_bf16", [True, False])
def test_cpu_bf16_variants_follow_the_cpu(monkeypatch, native_bf16):
    from faceinpaint.bench import landmarks as landmarks_lib
    from faceinpaint.bench import training as training_lib

    monkeypatch.setattr(training_lib, "cpu_has_bf16", lambda: native_bf16)
    monkeypatch.setattr(landmarks_lib, "native_bf16", lambda device: native_bf16)
    cpu = torch.device("cpu")
    names = [v.name for v in training_lib.training_variants(cpu, compile_cpu=False)]
    assert names == (["fp32 eager", "bf16 eager"] if native_bf16 else ["fp32 eager"])
    rows = list(landmarks_lib.bench_landmarks(cpu, quick_sizes(), 0, 1, None, with_dlib=False))
    speed_ups = [r.variant for r in rows if r.benchmark == "landmarks speed-up"]
    per_face = [r.variant for r in rows if r.benchmark == "landmarks per face"]
    if native_bf16:
        pair = ["network forward, bf16 vs fp32", "network forward+backward, bf16 vs fp32"]
        assert speed_ups == pair * 2  # 64 and 128 px
        assert "network forward+backward, bf16" in per_face
    else:
        assert speed_ups == [] and not any("bf16" in v for v in per_face)
