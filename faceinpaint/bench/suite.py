"""``faceinpaint bench``: the benchmark suite's entry point (see the package docstring)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch

from faceinpaint.bench.rows import TABLE_HEADER, Row, environment, environment_lines, markdown_row
from faceinpaint.bench.sizes import Sizes, paper_sizes, quick_sizes, sized_by_dcgan_config
from faceinpaint.io import append_jsonl, write_text

Benchmark = Literal[
    "peak", "vaegan", "dcgan", "search", "quality", "landmarks", "data", "flops", "photo"
]
ALL_BENCHMARKS: tuple[Benchmark, ...] = (
    "peak",
    "flops",
    "vaegan",
    "dcgan",
    "search",
    "quality",
    "landmarks",
    "data",
    "photo",
)


def _rows(
    device: torch.device,
    sizes: Sizes,
    chosen: tuple[str, ...],
    hardware: str,
    warmup: int,
    repeats: int,
    data_root: str | None,
    num_workers: int,
    dlib: bool,
    compile_cpu: bool,
    landmark_nets: list[str] | None = None,
    quality: dict[str, str | None] | None = None,
) -> Iterator[Row]:
    """Every chosen benchmark's rows on ``device``, in order, each as soon as it is measured."""
    from faceinpaint.bench.data import bench_data
    from faceinpaint.bench.dcgan import bench_dcgan
    from faceinpaint.bench.flops import achieved_rows, bench_flops, paper_run_rows
    from faceinpaint.bench.landmarks import bench_landmarks
    from faceinpaint.bench.peak import bench_peak
    from faceinpaint.bench.photo import bench_photo
    from faceinpaint.bench.quality import bench_time_to_quality
    from faceinpaint.bench.search import bench_search
    from faceinpaint.bench.vaegan import bench_vaegan

    done: list[Row] = []

    def emit(rows: Iterator[Row]) -> Iterator[Row]:
        for row in rows:
            done.append(row)
            yield row

    # the roofline is measured before and after the rows it divides (achieved_rows)
    peak = "peak" in chosen
    if peak:
        yield from emit(bench_peak(device, sizes.peak_size, max(repeats, 3), when="before"))
    if "flops" in chosen:
        yield from emit(bench_flops(device, sizes))
    if "vaegan" in chosen:
        yield from emit(bench_vaegan(device, sizes, repeats, compile_cpu))
    if "dcgan" in chosen:
        yield from emit(bench_dcgan(device, sizes, repeats, compile_cpu))
    if "search" in chosen:
        yield from emit(
            bench_search(
                device, sizes, warmup, repeats, dlib and device.type == "cpu", landmark_nets
            )
        )
    if peak and {"vaegan", "dcgan", "search"} & set(chosen):
        yield from emit(bench_peak(device, sizes.peak_size, max(repeats, 3), when="after"))
    yield from emit(achieved_rows(list(done), hardware))
    yield from emit(paper_run_rows(list(done), sizes, device.type))
    if "quality" in chosen:
        yield from emit(bench_time_to_quality(device, sizes, **(quality or {})))
    if "landmarks" in chosen:
        yield from emit(bench_landmarks(device, sizes, warmup, repeats, data_root, dlib))
    if "data" in chosen:
        consumed: dict[str, float] = {}  # method -> fastest training images/s of this run
        for row in done:
            method = row.benchmark.removesuffix(" train")
            if row.benchmark in ("vaegan train", "dcgan train") and row.value:
                consumed[method] = max(consumed.get(method, 0.0), row.value)
        yield from emit(
            bench_data(device, sizes, warmup, repeats, data_root, num_workers, consumed)
        )
    if "photo" in chosen and dlib:
        yield from emit(bench_photo(device, sizes, warmup, repeats))


def bench(
    out: str = "outputs/bench",
    quick: bool = False,
    full: bool = False,
    only: list[Benchmark] | None = None,
    devices: list[str] | None = None,
    warmup: int | None = None,
    repeats: int | None = None,
    data_root: str | None = None,
    num_workers: int = 2,
    dlib: bool = True,
    compile_cpu: bool = False,
    threads: int | None = None,
    landmark_nets: list[str] | None = None,
    dcgan_config: str | None = None,
    quality_dcgan: str | None = None,
    quality_encoder: str | None = None,
    quality_config: str | None = None,
) -> list[dict[str, Any]]:
    """Benchmark both methods on CPU (always) and CUDA (when present), printing the table as rows
    arrive; rows to ``<out>/bench.jsonl`` (appended as measured) and ``<out>/bench.md`` (this run).

    Variants compared with one another are timed interleaved (A, B, A, B, ...); each row is the
    median over ``repeats`` rounds with the min and max, the machine's load, and ratios are rows
    of their own computed round by round. Models are the papers' sizes with random weights (speed
    does not depend on them), except the time-to-quality rows, which search with trained weights
    (the shipped demo DCGAN and encoder unless told otherwise). On a CPU the default run is short (minutes): smaller VAE-GAN
    batches, few search iterations, extrapolated and labelled so; ``full`` runs the long one.

    Args:
        out: folder of ``bench.jsonl`` (appended) and ``bench.md`` (this run).
        quick: tiny models and runs (seconds; for tests and dry runs), not the papers' sizes.
        full: on a CPU, the long run (VAE-GAN batches 16 and 32, 5 search iterations): hours.
        only: benchmarks to run (default all): peak, flops, vaegan, dcgan, search, quality,
            landmarks, data, photo.
        devices: e.g. ``[cpu]``; default cpu, and cuda when available.
        warmup: untimed rounds before the timed ones (search, landmarks, data); default: 1 on
            a GPU and in the full CPU run, 0 in the short one.
        repeats: timed rounds; each row gives their median, min and max; default: 5 on a GPU,
            3 on a CPU, 2 with ``quick``.
        data_root: a folder of faces (e.g. ../shared/data/celeba-half) for the data and
            landmark rows; default the embedded faces.
        num_workers: loader processes of the data rows.
        dlib: include the dlib rows (dlib per face; dlib in the search loop on CPU; inpainting
            a photo, which finds its face with dlib).
        compile_cpu: also time torch.compile on CPU (slow to compile; a GPU always does).
        threads: torch CPU threads (default: torch's choice).
        landmark_nets: the search's landmark networks, timed interleaved with one another
            (default: the thesis configs' net): landmarks configs (configs/landmarks/*.yaml; their
            model's widths and heatmap_stride, random weights) or LandmarkNet checkpoints.
        dcgan_config: a DCGAN config (e.g. configs/dcgan/celeba-half-cpu.yaml) whose model
            sizes (latent_dim, ngf, ndf, image_size, search.candidates) replace the paper's in the
            DCGAN, search and FLOP rows.
        quality_dcgan: the trained DCGAN of the time-to-quality rows (default: the shipped
            demo weights, faceinpaint/assets/dcgan-demo.safetensors).
        quality_encoder: its latent encoder (default: the shipped encoder-demo.safetensors).
        quality_config: an eval config whose protocol's first mask and split give those rows'
            faces (default configs/eval/demo.yaml: the embedded val faces, centre mask; e.g.
            configs/eval/thesis.yaml for celeba-half with a celeba-half DCGAN and encoder).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if quick and full:
        raise ValueError("quick and full exclude each other; got both")
    chosen = tuple(only) if only else ALL_BENCHMARKS
    unknown = set(chosen) - set(ALL_BENCHMARKS)
    if unknown:
        raise ValueError(f"unknown benchmarks {sorted(unknown)}; choose from {ALL_BENCHMARKS}")
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    command = (
        "faceinpaint bench " + " ".join(sys.argv[2:])
        if sys.argv[1:2] == ["bench"]
        else f"bench(quick={quick}, full={full}, only={list(chosen)})"
    )
    started = time.perf_counter()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    sections: list[str] = []
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for but CUDA is not available")
        sizes = quick_sizes() if quick else paper_sizes(device, full)
        if dcgan_config is not None:
            sizes = sized_by_dcgan_config(sizes, dcgan_config)
        env = environment(device, command)
        device_warmup = sizes.warmup if warmup is None else warmup
        device_repeats = sizes.repeats if repeats is None else repeats
        head = f"## {device.type}: {sizes.label}\n\n" + environment_lines(env) + TABLE_HEADER
        print("\n" + head, end="", flush=True)
        lines = []
        rows = _rows(
            device,
            sizes,
            chosen,
            env["hardware"],
            device_warmup,
            device_repeats,
            data_root,
            num_workers,
            dlib,
            compile_cpu,
            landmark_nets,
            {"dcgan": quality_dcgan, "encoder": quality_encoder, "config": quality_config},
        )
        for row in rows:
            record = {**env, **asdict(row), "sizes": sizes.label}
            record["extra"] = {k: v for k, v in record["extra"].items() if k != "key"}
            append_jsonl([json.loads(json.dumps(record, default=str))], out_dir / "bench.jsonl")
            line = markdown_row(record)
            print(line, end="", flush=True)
            lines.append(line)
            records.append(record)
        sections.append(head + "".join(lines))
    wall = f"Wall time: {time.perf_counter() - started:.0f} s (`{command}`)\n"
    print("\n" + wall, end="", flush=True)
    write_text("# faceinpaint bench\n\n" + "\n".join(sections) + "\n" + wall, out_dir / "bench.md")
    return records
