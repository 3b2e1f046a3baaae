"""fp32 against bf16 autocast (Lightning ``precision: bf16-mixed``) for the CPU training paths: the
DCGAN and VAE-GAN stages 1-3, each at the paper's size and at its CPU config's, and the landmark
network's forward+backward as the latent search runs it. One thread; per path the two precisions
timed interleaved (``faceinpaint.bench.timing.interleave``), each fit a fresh Trainer that times
its last update after ``--warmup`` untimed batches; the ratio is taken round by round. Random weights
(speed does not depend on them). docs/RESULTS.md, "bf16 on the CPU training paths".

    python scripts/train_bf16_ab.py                      # every path
    python scripts/train_bf16_ab.py --paths vaegan-cpu-1 --formats contiguous channels_last
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from faceinpaint.bench.dcgan import build_dcgan
from faceinpaint.bench.sizes import (
    PAPER_DCGAN,
    PAPER_VAEGAN,
    THESIS_LANDMARK_NET,
    paper_sizes,
    synthetic_batch,
)
from faceinpaint.bench.timing import interleave, paired_ratios
from faceinpaint.bench.training import interleaved_fits
from faceinpaint.bench.vaegan import build_vaegan
from faceinpaint.device import bf16_autocast, keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}
MEMORY_FORMATS = ("contiguous", "channels_last")
VAEGAN_KEYS = tuple(PAPER_VAEGAN)
DCGAN_KEYS = tuple(PAPER_DCGAN)


def config_model(path: str, keys: tuple[str, ...]) -> dict:
    """The ``keys`` of a training config's ``model.init_args``."""
    init_args = yaml.safe_load((ROOT / path).read_text())["model"]["init_args"]
    return {key: init_args[key] for key in keys}


def paths() -> dict[str, tuple[str, dict, int]]:
    """name -> (kind, model kwargs, batch size)."""
    vaegan_cpu = config_model("configs/vaegan/celeba-half-64-cpu.yaml", VAEGAN_KEYS)
    dcgan_cpu = config_model("configs/dcgan/celeba-half-cpu.yaml", DCGAN_KEYS)
    out: dict[str, tuple[str, dict, int]] = {
        "dcgan-paper": ("dcgan", PAPER_DCGAN, 64),
        "dcgan-cpu": ("dcgan", dcgan_cpu, 64),
    }
    for stage in (1, 2, 3):
        out[f"vaegan-paper-{stage}"] = (f"vaegan{stage}", PAPER_VAEGAN, 2)
        out[f"vaegan-cpu-{stage}"] = (f"vaegan{stage}", vaegan_cpu, 16)
    out["landmarks-thesis"] = ("landmarks", THESIS_LANDMARK_NET, 64)
    out["landmarks-default"] = ("landmarks", {}, 64)
    return out


def training_times(
    kind: str, model: dict, batch_size: int, rounds: int, warmup: int, formats: list[str]
) -> dict[str, list[float]]:
    """Seconds of one update per variant (precision x memory format), interleaved by round.
    ``channels_last`` is the modules' own option, as the configs set it (networks and batches
    converted by the module)."""
    cpu = torch.device("cpu")
    sizes = paper_sizes(cpu)
    modules = {}
    for memory_format in formats:
        kwargs = {**model, "channels_last": memory_format == "channels_last"}
        for name, precision in PRECISIONS.items():
            if kind == "dcgan":
                module = build_dcgan(replace(sizes, dcgan=kwargs))
                cycle = 1
            else:
                stage = int(kind[-1])
                module = build_vaegan(replace(sizes, vaegan=kwargs), stage, False)
                cycle = 1 if stage == 1 else module.critic.n_critic
            modules[f"{name} {memory_format}"] = (module, precision)
    batch = synthetic_batch(batch_size, model["image_size"], cpu)
    return interleaved_fits(modules, batch, cpu, rounds, warmup, cycle)


def landmark_times(model: dict, batch_size: int, rounds: int) -> dict[str, list[float]]:
    """Forward+backward into the input (the search's differentiable landmark term)."""
    from faceinpaint.landmarks.network import LandmarkNet

    net = LandmarkNet(**model).eval().requires_grad_(False)
    x = torch.rand(batch_size, 3, 64, 64) * 2 - 1

    def step(precision: str) -> Callable[[], None]:
        def run() -> None:
            y = x.clone().requires_grad_(True)
            with bf16_autocast(x.device, precision == "bf16"):
                _, points = net(y)
            points.float().sum().backward()

        return run

    return interleave({p: step(p) for p in PRECISIONS}, torch.device("cpu"), 2, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", nargs="*", default=None, help=f"default all: {list(paths())}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches in each fit")
    parser.add_argument(
        "--formats",
        nargs="+",
        default=["contiguous"],
        choices=MEMORY_FORMATS,
        help="memory formats of the training paths' networks (each timed in both precisions)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory(True)  # as the faceinpaint command does
    torch.manual_seed(0)
    table = paths()
    unknown = sorted(set(args.paths or ()) - set(table))
    if unknown:
        parser.error(f"unknown paths {unknown}; known: {list(table)}")
    for name in args.paths or table:
        kind, model, batch_size = table[name]
        if kind == "landmarks":
            times = landmark_times(model, batch_size, args.rounds)
        else:
            times = training_times(kind, model, batch_size, args.rounds, args.warmup, args.formats)
        base = next(iter(times))
        for variant, seconds in times.items():
            ratio = paired_ratios(times[base], seconds)
            print(
                f"{name:18s} batch {batch_size:3d}  {variant:22s} "
                f"{1e3 * statistics.median(seconds):7.0f} ms  speed-up over {base}: "
                f"{ratio.median:.2f} [{ratio.low:.2f}-{ratio.high:.2f}] ({ratio.n} rounds)",
                flush=True,
            )


if __name__ == "__main__":
    main()
