"""Helpers of scripts/gpu_check.sh: the environment record, the profile, the search's face count,
and the report (one JSON-lines file, one markdown file, a few PNGs) from what the parts left.

    python scripts/gpu_check.py env --out WORK/env.jsonl
    python scripts/gpu_check.py profile --device cuda --dry-run 0 --out WORK/profile.jsonl
    python scripts/gpu_check.py fixture --out WORK/faces        # the dry run's stand-in faces
    python scripts/gpu_check.py search-plan --bench WORK/bench/bench.jsonl --seconds 35 --most 256
    python scripts/gpu_check.py vaegan-plan --bench WORK/bench/bench.jsonl --seconds 45
    python scripts/gpu_check.py report --work WORK --out OUT --dry-run 0
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import json
import math
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import torch

from faceinpaint.io import read_jsonl, write_jsonl, write_text

TARGETS = {
    "search": "search >= 2 images/s at 64 candidates x 1000 iterations (aim: 4)",
    "vaegan": "VAE-GAN curriculum (40,000 updates, batch 16, 128 px) <= 20 min on one H100/H200",
    "data": "loader >= 10x what training consumes",
    "landmark": "landmark term <= 1.3x a plain search iteration, at 1 and at 16 images",
    "batching": "batching pays: 16 images searched together > 1x the per-image rate of one at a time",
}
PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "kornia", "jsonargparse", "numpy")


# ----------------------------------------------------------------------------- env
def revision() -> str:
    """The git revision of this checkout (``-dirty`` with local changes), or the one recorded by
    ``make gpu-data`` in .data/REVISION where the copy has no .git, else ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
        return head + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        recorded = Path(".data/REVISION")
        return recorded.read_text().strip() if recorded.exists() else "unknown"


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    record: dict[str, Any] = {
        "record": "env",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "revision": revision(),
        "python": platform.python_version(),
        "packages": versions,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        record |= {
            "gpu": properties.name,
            "gpu_memory_gib": round(properties.total_memory / 2**30, 1),
            "capability": f"{properties.major}.{properties.minor}",
            "multiprocessors": properties.multi_processor_count,
            "cudnn": torch.backends.cudnn.version(),
            "bf16_supported": torch.cuda.is_bf16_supported(),
        }
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            record["driver"], record["max_sm_clock"] = (x.strip() for x in smi.split(",", 1))
        except (OSError, subprocess.CalledProcessError, ValueError):
            record["driver"] = None
    else:
        record["gpu"] = None
    return record


# ----------------------------------------------------------------------------- profile
def profile(device: torch.device, dry_run: bool, top: int = 12) -> list[dict[str, Any]]:
    """The ``top`` operators by self time of one VAE-GAN stage-3 training step (bf16 on a GPU)
    and of 5 search iterations (16 images x 64 candidates), each as a share of the total."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from faceinpaint.bench.sizes import paper_sizes, quick_sizes, synthetic_batch
    from faceinpaint.bench.training import fit_once
    from faceinpaint.bench.vaegan import build_vaegan
    from faceinpaint.latent_search import LatentSearch, SearchSettings
    from faceinpaint.models.dcgan import Discriminator, Generator

    sizes = quick_sizes() if dry_run else paper_sizes(device)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    vaegan_batch = synthetic_batch(sizes.vaegan_batches[0], sizes.vaegan["image_size"], device)
    module = build_vaegan(sizes, stage=3, compiled=False)
    generator = Generator(sizes.dcgan["latent_dim"], sizes.dcgan["ngf"], sizes.dcgan["image_size"])
    discriminator = Discriminator(sizes.dcgan["ndf"], sizes.dcgan["image_size"])
    search = LatentSearch(
        generator.to(device),
        discriminator.to(device),
        settings=SearchSettings(candidates=sizes.candidates, iterations=5),
    )
    images = 2 if dry_run else 16
    search_batch = synthetic_batch(images, sizes.dcgan["image_size"], device)
    jobs = {
        f"vaegan stage-3 training step, batch {sizes.vaegan_batches[0]}"
        + (", bf16" if cuda else ""): lambda: fit_once(
            module, vaegan_batch, device, "bf16-mixed" if cuda else "32-true"
        ),
        f"search, {images} images x {sizes.candidates} candidates, 5 iterations": lambda: search(
            search_batch["image"], search_batch["mask"], search_batch["index"]
        ),
    }
    rows = []
    for what, job in jobs.items():
        job()  # warm-up: cuDNN autotuning, allocator
        with torch_profile(activities=activities) as prof:
            job()
        events = [e for e in prof.key_averages() if getattr(e, key) > 0]
        total = sum(getattr(e, key) for e in events)
        for event in sorted(events, key=lambda e: getattr(e, key), reverse=True)[:top]:
            rows.append(
                {
                    "record": "profile",
                    "what": what,
                    "op": event.key,
                    "self_ms": getattr(event, key) / 1e3,
                    "share": getattr(event, key) / total,
                    "calls": event.count,
                    "clock": "device" if cuda else "cpu",
                }
            )
    return rows


# ----------------------------------------------------------------------------- fixture
def fixture(out: Path, train: int = 24, val: int = 8) -> None:
    """A tiny stand-in for celeba-half (embedded procedural faces, not CelebA) in its layout:
    ``out/images/000001.jpg`` ... for train and ``008001.jpg`` ... for val, for the dry run."""
    from PIL import Image

    from faceinpaint.data.datamodule import FaceDataModule

    data = FaceDataModule(image_size=128, num_workers=0, synthetic_size=(train + val) * 5 // 4 + 1)
    faces = data.cached_split("train").images[: train + val]  # (N,128,128,3) uint8
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [*range(1, train + 1), *range(8001, 8001 + val)]
    for number, face in zip(numbers, faces, strict=True):
        Image.fromarray(face).save(folder / f"{number:06d}.jpg", quality=95)


# ----------------------------------------------------------------------------- search limit
def search_plan(bench: Path, seconds: float, most: int, startup: float = 15.0) -> tuple[int, int]:
    """(faces, batch) for a search of ``seconds`` (``startup`` of them for loading): 60 % of the
    images/s the bench measured for the largest B without landmark term (the fills and the
    grid take the rest), a multiple of 8 between 8 and ``most``, in batches of at most 64."""
    rates = [
        (r["extra"]["images"], r["value"])
        for r in read_jsonl(bench)
        if r.get("benchmark") == "latent search"
        and r.get("value")
        and r["extra"].get("landmark") == "no landmark"
    ]
    faces = 8
    if rates:
        _, rate = max(rates)
        faces = 8 * math.floor(0.6 * rate * max(seconds - startup, 0) / 8)
    faces = min(most, max(8, faces))
    return faces, min(64, faces)


def vaegan_plan(bench: Path, seconds: float, startup: float = 20.0) -> str:
    """Curriculum boundaries "a, b, c" (generator updates) that give each stage a third of a
    ``seconds`` run (``startup`` of them for loading and validation), from the bench's bf16
    eager batch-16 rows; "400, 700, 1000" when the bench measured none."""
    rate = {
        r["extra"]["stage"]: 1 / r["extra"]["seconds_per_update"]  # generator updates/s
        for r in read_jsonl(bench)
        if r.get("benchmark") == "vaegan train"
        and r.get("variant") == "bf16 eager"
        and r.get("value")
        and r["extra"].get("batch") == 16
    }
    if set(rate) != {1, 2, 3}:
        return "400, 700, 1000"
    third = max(seconds - startup, 3.0) / 3
    bounds, total = [], 0
    for stage in (1, 2, 3):
        total += max(1, int(rate[stage] * third))
        bounds.append(total)
    return ", ".join(map(str, bounds))


# ----------------------------------------------------------------------------- report
def _tests(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        message = ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (
                    (child.get("message") or "").splitlines()[0][:200]
                    if child.get("message")
                    else ""
                )
        rows.append(
            {
                "record": "test",
                "test": f"{case.get('classname')}::{case.get('name')}",
                "outcome": outcome,
                "seconds": float(case.get("time") or 0),
                "message": message,
            }
        )
    return rows


def _metrics_csv(run: Path) -> list[dict[str, float]]:
    """Rows of a CSVLogger ``metrics.csv`` (the newest one under ``run``), numbers only."""
    files = sorted(run.glob("**/metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        return []
    rows = []
    with files[-1].open() as stream:
        for row in csv.DictReader(stream):
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def _training(name: str, run: Path, part: dict[str, Any] | None) -> dict[str, Any] | None:
    rows = _metrics_csv(run)
    if not rows:
        return None
    steps = max(r.get("step", 0) for r in rows)
    summary: dict[str, Any] = {"record": "training", "run": name, "last_step": int(steps)}
    if part and part.get("elapsed_s"):
        summary["steps_per_s_with_startup"] = steps / part["elapsed_s"]
    stages = [(r["step"], r["train/stage"]) for r in rows if "train/stage" in r and "step" in r]
    if stages:
        summary["stage_starts"] = {
            int(stage): int(min(s for s, st in stages if st == stage))
            for stage in {st for _, st in stages}
        }
    val = [(r["step"], r["val/psnr_hole"]) for r in rows if "val/psnr_hole" in r]
    if val:
        summary["val_psnr_hole"] = val
    return summary


def _plot(
    path: Path,
    title: str,
    curves: dict[str, list[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    marks: dict[str, float] | None = None,
) -> Path | None:
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for label, points in curves.items():
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, label=label, marker="." if len(xs) < 30 else None)
    for label, x in (marks or {}).items():
        ax.axvline(x, color="grey", linestyle=":")
        ax.annotate(label, (x, ax.get_ylim()[1]), fontsize=7, va="top")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(rows: list[list[Any]], header: list[str]) -> str:
    def cell(x: Any) -> str:
        return f"{x:.4g}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _gpu_rows(bench: list[dict[str, Any]], benchmark: str) -> list[dict[str, Any]]:
    """The bench rows of ``benchmark`` measured on the GPU."""
    return [r for r in bench if r.get("benchmark") == benchmark and r.get("device") != "cpu"]


def _spreads(rows: list[dict[str, Any]], unit: str) -> str:
    """``variant: median unit (min-max)`` of each row, joined by "; "."""
    return "; ".join(
        f"{r['variant']}: {r['value']:.3g}{unit} ({r['low']:.3g}-{r['high']:.3g})" for r in rows
    )


def report(work: Path, out: Path, dry_run: bool) -> None:
    """Gather every part's records into OUT/gpu-check.jsonl and OUT/gpu-check.md (+ PNGs)."""
    out.mkdir(parents=True, exist_ok=True)
    parts = read_jsonl(work / "parts.jsonl")
    part_of = {p["part"]: p for p in parts}
    env = read_jsonl(work / "env.jsonl")
    tests = _tests(work / "tests.xml")
    bench = [{"record": "bench", **r} for r in read_jsonl(work / "bench" / "bench.jsonl")]
    prof = read_jsonl(work / "profile.jsonl")
    evals = [{"record": "eval", **r} for r in read_jsonl(work / "eval" / "results.jsonl")]
    training = [
        t
        for t in (_training(n, work / "runs" / n, part_of.get(n)) for n in ("dcgan", "vaegan"))
        if t
    ]
    write_jsonl(parts + env + tests + bench + prof + evals + training, out / "gpu-check.jsonl")

    e = env[0] if env else {}
    md = [
        "# GPU check" + (" (CPU DRY RUN: tiny sizes, numbers mean nothing)" if dry_run else ""),
        "",
        f"Hardware: {e.get('gpu') or platform.processor() or 'CPU'}"
        + (
            f", driver {e.get('driver')}, CUDA {e.get('torch_cuda')}, cuDNN {e.get('cudnn')}"
            if e.get("gpu")
            else ""
        )
        + f"; torch {e.get('packages', {}).get('torch')}; revision {e.get('revision', revision())}; "
        f"date {e.get('date', datetime.date.today().isoformat())}.",
        "",
        "## Parts",
        "",
        _table(
            [
                [
                    p["part"],
                    p["status"],
                    p.get("elapsed_s", ""),
                    p.get("budget_s", ""),
                    p.get("reason", ""),
                ]
                for p in parts
            ],
            ["part", "status", "seconds", "budget", "note"],
        ),
        "## Targets",
        "",
    ]
    search_rows = _gpu_rows(bench, "latent search")
    best_search = max((r["value"] for r in search_rows if r.get("value")), default=None)
    ratios = [r for r in _gpu_rows(bench, "latent search ratio") if r.get("value") is not None]
    landmark = [
        r for r in ratios if r["variant"].endswith(("no landmark, B=1", "no landmark, B=16"))
    ]
    batching = [r for r in ratios if r["variant"].startswith("B=16 / B=1 per-image rate")]
    curriculum = [r for r in bench if r.get("benchmark") == "vaegan curriculum (extrapolated)"]
    data = [r for r in bench if r.get("benchmark") == "data pipeline"]
    md += [
        f"- {TARGETS['search']}: "
        + (
            f"best measured {best_search:.3g} images/s (extrapolated from the timed iterations)"
            if best_search
            else "not measured"
        ),
        f"- {TARGETS['vaegan']}: "
        + (
            "; ".join(
                f"{r['variant']} {r['value']:.3g} min ({r['low']:.3g}-{r['high']:.3g})"
                for r in curriculum
            )
            or "not measured"
        ),
        f"- {TARGETS['landmark']}: " + (_spreads(landmark, "x") or "not measured"),
        f"- {TARGETS['batching']}: " + (_spreads(batching, "x") or "not measured"),
        f"- {TARGETS['data']}: "
        + ("; ".join(f"{r['variant']}: {r['note']}" for r in data) or "not measured"),
        "",
    ]
    if tests:
        counts = {
            o: sum(t["outcome"] == o for t in tests)
            for o in ("passed", "failed", "error", "skipped")
        }
        md += ["## gpu-marked tests", "", ", ".join(f"{v} {k}" for k, v in counts.items() if v), ""]
        md += [
            f"- {t['outcome']}: `{t['test']}` {t['message']}"
            for t in tests
            if t["outcome"] != "passed"
        ]
        md += [""]
    if bench:
        from faceinpaint.bench.rows import markdown_table

        md += ["## faceinpaint bench", "", markdown_table(bench)]
    if prof:
        md += ["## Profile (top operators by self time)", ""]
        for what in dict.fromkeys(r["what"] for r in prof):
            rows = [r for r in prof if r["what"] == what]
            md += [
                f"{what} ({rows[0]['clock']} time):",
                "",
                _table(
                    [[r["op"], r["self_ms"], f"{100 * r['share']:.1f}%", r["calls"]] for r in rows],
                    ["operator", "self ms", "share", "calls"],
                ),
            ]
    if evals:
        md += ["## Quality: celeba-half val, thesis masks", ""]
        rows = []
        for r in evals:
            metrics = r.get("metrics", {})
            cells = [
                f"{metrics[m]['mean']:.3f} ± {metrics[m]['ci95']:.3f}" if m in metrics else ""
                for m in ("psnr_hole", "ssim_hole")
            ]
            rows.append(
                [r.get("mask"), r.get("method"), r.get("n"), *cells, r.get("seconds_per_face", "")]
            )
        md += [_table(rows, ["mask", "method", "n", "hole PSNR", "hole SSIM", "s/face"])]
    pngs = []
    for t in training:
        md += [f"## Training: {t['run']}", "", "```", json.dumps(t, default=str)[:2000], "```", ""]
        curve = _plot(
            out / f"{t['run']}-val-psnr-hole.png",
            f"{t['run']}: val hole PSNR",
            {"val/psnr_hole": t.get("val_psnr_hole", [])},
            "step",
            "dB",
            {f"stage {k}": v for k, v in t.get("stage_starts", {}).items()},
        )
        if curve:
            pngs.append(curve.name)
    md += ["", "Files: gpu-check.jsonl (every record), gpu-check.log, " + ", ".join(pngs), ""]
    write_text("\n".join(md), out / "gpu-check.md")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("env")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("profile")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("fixture")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("search-plan")
    p.add_argument("--bench", type=Path, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--most", type=int, required=True)
    p = sub.add_parser("vaegan-plan")
    p.add_argument("--bench", type=Path, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p = sub.add_parser("report")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dry-run", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "env":
        record = environment()
        write_jsonl([record], args.out)
        print(json.dumps(record, indent=1))
    elif args.command == "profile":
        if args.dry_run:
            torch.set_num_threads(1)
        rows = profile(torch.device(args.device), bool(args.dry_run))
        write_jsonl(rows, args.out)
        for row in rows:
            print(
                f"{row['what'][:40]:40s} {row['op'][:40]:40s} {row['self_ms']:9.2f} ms {100 * row['share']:5.1f}%"
            )
    elif args.command == "fixture":
        fixture(args.out)
    elif args.command == "vaegan-plan":
        print(vaegan_plan(args.bench, args.seconds))
    elif args.command == "search-plan":
        print(*search_plan(args.bench, args.seconds, args.most))
    else:
        report(args.work, args.out, bool(args.dry_run))


if __name__ == "__main__":
    sys.exit(main())
