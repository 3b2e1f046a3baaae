"""``faceinpaint demo``: both methods end to end on the embedded faces, in minutes on a CPU.

Trains the VAE-GAN and the DCGAN demo configs (small networks sized for a 2-core CPU; not the
papers' settings), then evaluates both checkpoints and the classical baselines with
the ``thesis`` masks (configs/eval/smoke.yaml) and writes, under ``out``: the table
``thesis.md``, the image grids ``thesis-<mask>.png``, ``results.jsonl`` and the training runs
(``runs/``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.eval.protocols import as_protocol
from faceinpaint.eval.runner import evaluate

REPO = Path(__file__).resolve().parents[1]


def resolve_config(path: str) -> Path:
    """``path`` as given, else relative to the checkout (so the demo runs from any folder)."""
    given = Path(path)
    if given.is_file():
        return given
    beside_package = REPO / path
    if beside_package.is_file():
        return beside_package
    raise FileNotFoundError(f"config {path!r} not found here nor in {REPO}")


def train_smoke(config: Path, runs: Path) -> Path:
    """``faceinpaint fit --config config`` logging under ``runs``; the best (else last) checkpoint."""
    from faceinpaint.cli import cli_main

    cli = cli_main(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.logger.init_args.save_dir",
            str(runs),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
        ]
    )
    callback = cli.trainer.checkpoint_callback
    checkpoint = (callback.best_model_path or callback.last_model_path) if callback else ""
    if not checkpoint or not Path(checkpoint).is_file():
        raise RuntimeError(f"training {config} wrote no checkpoint (ModelCheckpoint missing?)")
    return Path(checkpoint)


def demo(
    out: str = "outputs/demo",
    vaegan_config: str = "configs/vaegan/demo.yaml",
    dcgan_config: str = "configs/dcgan/demo.yaml",
    protocol_config: str = "configs/eval/smoke.yaml",
    threads: int | None = 1,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Train both smoke models on the embedded faces, then benchmark them with the baselines.

    Args:
        out: folder of the table (thesis.md), image grids, results.jsonl and training runs.
        vaegan_config: the VAE-GAN training config.
        dcgan_config: the DCGAN training config.
        protocol_config: the evaluation config (``protocol:`` and ``data:`` sections).
        threads: torch CPU threads; the smoke networks are too small to gain from more, and
            on a busy machine extra threads only wait for each other. None keeps torch's choice.
        device: where the evaluation runs (the smoke configs train on the CPU).

    Returns the result rows.
    """
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _demo(Path(out), vaegan_config, dcgan_config, protocol_config, device)
    finally:
        torch.set_num_threads(previous_threads)


def _demo(
    out_dir: Path, vaegan_config: str, dcgan_config: str, protocol_config: str, device: str
) -> list[dict[str, Any]]:
    started = time.perf_counter()
    runs = out_dir / "runs"
    checkpoints = {}
    for name, config in (("vaegan", vaegan_config), ("dcgan", dcgan_config)):
        step = time.perf_counter()
        checkpoints[name] = train_smoke(resolve_config(config), runs)
        print(f"demo: trained {name} in {time.perf_counter() - step:.0f} s -> {checkpoints[name]}")
    sections = yaml.safe_load(resolve_config(protocol_config).read_text())
    rows = evaluate(
        data=FaceDataModule(**sections.get("data", {})),
        protocol=as_protocol(sections["protocol"]),
        vaegan=str(checkpoints["vaegan"]),
        dcgan=str(checkpoints["dcgan"]),
        device=device,
        out=str(out_dir),
    )
    print(f"demo: done in {time.perf_counter() - started:.0f} s; table {out_dir / 'thesis.md'}")
    return rows
