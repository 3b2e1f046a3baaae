"""The prepared GPU check (scripts/gpu_check.sh): budgets that cut a part, not the script; the
report from whatever the parts left; the CPU dry run of every part (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def _helpers():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DRY_RUN": "1",
        "PYTHON": sys.executable,
        "OUT": str(tmp_path / "out"),
        "GPU_CHECK_WORK": str(tmp_path / "work"),
        "GPU_DATA": str(tmp_path / "no-data"),
        "OMP_NUM_THREADS": "1",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _parts(tmp_path: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in (tmp_path / "out" / "gpu-check.jsonl").read_text().splitlines()]
    return {r["part"]: r for r in rows if r["record"] == "part"}


def test_a_part_over_its_budget_is_cut_and_the_script_goes_on(tmp_path):
    done = _run(
        tmp_path,
        GPU_CHECK_PARTS="bench,report",
        GPU_CHECK_BUDGET_BENCH_SEARCH="1",
        GPU_CHECK_BUDGET_BENCH_VAEGAN="1",
        GPU_CHECK_BUDGET_BENCH_OTHER="1",
        GPU_CHECK_BUDGET_REPORT="600",
    )
    assert done.returncode == 0, done.stderr
    parts = _parts(tmp_path)
    assert {parts[p]["status"] for p in ("bench-search", "bench-vaegan", "bench-other")} == {"cut"}
    assert parts["bench-search"]["budget_s"] == 1
    report = (tmp_path / "out" / "gpu-check.md").read_text()
    assert "| bench-search | cut |" in report
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "gpu-check.jsonl",
        "gpu-check.log",
        "gpu-check.md",
    ]


def test_the_curves_part_takes_what_is_left_of_the_deadline_and_skips_when_nothing_is(tmp_path):
    # GPU_CHECK_ENCODER names an encoder, so only the deadline can stop the part
    (tmp_path / "encoder.ckpt").write_bytes(b"")
    done = _run(
        tmp_path,
        GPU_CHECK_PARTS="curves,report",
        GPU_CHECK_ENCODER=str(tmp_path / "encoder.ckpt"),
        GPU_CHECK_BUDGET_DEADLINE="40",
        GPU_CHECK_BUDGET_REPORT="600",
    )
    assert done.returncode == 0, done.stderr
    curves = _parts(tmp_path)["curves"]
    assert curves["status"] == "skipped"
    assert "s left before the 40s deadline" in curves["reason"]


def test_search_plan_fits_the_faces_in_the_time_measured(tmp_path):
    helpers = _helpers()
    bench = tmp_path / "bench.jsonl"
    rows = [
        {
            "benchmark": "latent search",
            "value": 1.0,
            "extra": {"images": 1, "landmark": "no landmark"},
        },
        {
            "benchmark": "latent search",
            "value": 4.0,
            "extra": {"images": 64, "landmark": "no landmark"},
        },
        {
            "benchmark": "latent search",
            "value": 9.0,
            "extra": {"images": 64, "landmark": "landmark network"},
        },
    ]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # 60 % of 4 images/s (the largest B without landmark term) x (65 - 15) s = 120 faces
    assert helpers.search_plan(bench, 65, 256) == (120, 64)
    assert helpers.search_plan(bench, 1000, 256) == (256, 64)
    assert helpers.search_plan(bench, 20, 256) == (8, 8)  # 12 faces: a multiple of 8, one batch
    assert helpers.search_plan(tmp_path / "absent.jsonl", 100, 256) == (8, 8)


def test_vaegan_plan_gives_each_stage_a_third_of_the_run(tmp_path):
    helpers = _helpers()
    bench = tmp_path / "bench.jsonl"
    rows = [
        {
            "benchmark": "vaegan train",
            "variant": "bf16 eager",
            "value": 16.0 * rate * (1 if stage == 1 else 5),
            "extra": {"stage": stage, "batch": 16, "seconds_per_update": 1 / rate},
        }
        for stage, rate in ((1, 30.0), (2, 6.0), (3, 5.0))
    ]  # updates/s per stage
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # (50 - 20) s / 3 = 10 s per stage: 300, 60 and 50 updates
    assert helpers.vaegan_plan(bench, 50) == "300, 360, 410"
    assert helpers.vaegan_plan(tmp_path / "absent.jsonl", 50) == "400, 700, 1000"


def test_report_gathers_the_parts_records(tmp_path):
    helpers = _helpers()
    work = tmp_path / "work"
    (work / "bench").mkdir(parents=True)
    (work / "parts.jsonl").write_text(
        json.dumps(
            {
                "record": "part",
                "part": "bench-search",
                "status": "ok",
                "exit": 0,
                "elapsed_s": 5,
                "budget_s": 50,
            }
        )
        + "\n"
    )
    row = {
        "benchmark": "vaegan curriculum (extrapolated)",
        "device": "cuda",
        "variant": "bf16 eager",
        "value": 12.0,
        "low": 11.0,
        "high": 13.5,
        "n": 5,
        "unit": "minutes",
        "note": "",
        "load_1min": 1.0,
        "cores": 16,
    }
    (work / "bench" / "bench.jsonl").write_text(json.dumps(row) + "\n")
    (work / "tests.xml").write_text(
        '<testsuites><testsuite><testcase classname="tests.gpu.test_cuda" name="test_a" time="1.5"/>'
        '<testcase classname="tests.gpu.test_cuda" name="test_b" time="0.1">'
        '<failure message="AssertionError: 3 != 4">trace</failure></testcase></testsuite></testsuites>'
    )
    helpers.report(work, tmp_path / "out", dry_run=False)
    report = (tmp_path / "out" / "gpu-check.md").read_text()
    assert "bf16 eager 12 min (11-13.5)" in report
    assert "1 passed, 1 failed" in report
    assert "- failed: `tests.gpu.test_cuda::test_b` AssertionError: 3 != 4" in report
    records = [
        json.loads(x)["record"]
        for x in (tmp_path / "out" / "gpu-check.jsonl").read_text().splitlines()
    ]
    assert records == ["part", "test", "test", "bench"]


def test_report_says_what_the_landmark_term_costs_and_whether_batching_pays(tmp_path):
    helpers = _helpers()
    work = tmp_path / "work"
    (work / "bench").mkdir(parents=True)

    def ratio(variant: str, value: float, device: str = "cuda") -> dict:
        return {
            "benchmark": "latent search ratio",
            "device": device,
            "variant": variant,
            "value": value,
            "low": value - 0.1,
            "high": value + 0.1,
            "n": 5,
            "unit": "x",
            "note": "",
        }

    net = "landmark network"
    rows = [
        ratio(f"{net} / no landmark, B=1", 1.2),
        ratio(f"{net} / no landmark, B=4", 1.5),
        ratio(f"{net} / no landmark, B=16", 1.1),
        ratio(f"{net} / no landmark, B=16", 9.0, device="cpu"),
        ratio("B=16 / B=1 per-image rate, no landmark", 6.0),
        ratio(f"B=16 / B=1 per-image rate, {net}", 5.0),
        ratio(f"B=64 / B=1 per-image rate, {net}", 7.0),
    ]
    (work / "bench" / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    helpers.report(work, tmp_path / "out", dry_run=False)
    lines = (tmp_path / "out" / "gpu-check.md").read_text().splitlines()
    (landmark,) = [x for x in lines if x.startswith("- landmark term <= 1.3x")]
    assert landmark.endswith(
        f"{net} / no landmark, B=1: 1.2x (1.1-1.3); {net} / no landmark, B=16: 1.1x (1-1.2)"
    )
    (batching,) = [x for x in lines if x.startswith("- batching pays")]
    assert batching.endswith(
        "B=16 / B=1 per-image rate, no landmark: 6x (5.9-6.1); "
        f"B=16 / B=1 per-image rate, {net}: 5x (4.9-5.1)"
    )


@pytest.mark.slow
def test_the_dry_run_runs_every_part(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    parts = _parts(tmp_path)
    statuses = {name: part["status"] for name, part in parts.items()}
    assert {"dcgan", "search-center", "encoder-fit", "encoder-search", "vaegan"} <= set(statuses)
    assert {"curves-random", "curves-encoder", "curves-plot"} <= set(statuses)
    assert set(statuses.values()) == {"ok"}, statuses
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(out) <= 12 and {"gpu-check.jsonl", "gpu-check.md", "gpu-check.log"} <= set(out)
    # issue 13 item 2: random and encoder starts measured on the same faces, plotted, tabled
    curves = (tmp_path / "out" / "search-curves.md").read_text()
    assert "| random | 2 | 2 | 4 |" in curves and "| encoder | 2 | 1 | 2 |" in curves
    assert "search-curves.png" in out
    report = (tmp_path / "out" / "gpu-check.md").read_text()
    for section in ("## faceinpaint bench", "## Profile", "## Quality", "## Training: vaegan"):
        assert section in report
