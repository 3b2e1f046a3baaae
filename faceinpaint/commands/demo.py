"""``faceinpaint demo``: every shipped method against the classical fills on the embedded faces.

By default the demo loads the small models shipped in ``faceinpaint/assets/`` (fp16
safetensors, trained on the embedded procedural faces) that its config lists
(configs/eval/demo.yaml ``models:``) and evaluates them with the thesis masks (centre, left and
right halves) against the classical fills, in a few minutes on a 2-core CPU: the DCGAN latent
search starts from the latent encoder's estimate and refines it with the thesis's losses.
``--train true`` first retrains every model from scratch with its config (hours on one CPU
core) and writes their weights to ``--assets``.

Outputs in ``out``: the table ``thesis.md``, the grids ``thesis-<mask>.png`` (original, masked,
one row per method), ``results.jsonl`` and, with ``--train``, the training runs (``runs/``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from faceinpaint.ops.fills import FILLS_WITHOUT_BANK
from faceinpaint.paths import ASSETS, resolve_config


def say(message: str, started: float) -> None:
    """One progress line, stamped with the seconds since ``started``."""
    print(f"demo [{time.perf_counter() - started:5.0f} s] {message}", flush=True)


def train(config: Path, runs: Path, overrides: list[str] | None = None) -> Path:
    """``faceinpaint fit --config config`` logging under ``runs``; the newest checkpoint."""
    from faceinpaint.commands.train import run_trainer_command

    cli = run_trainer_command(
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
            *(overrides or []),
        ]
    )
    callback = cli.trainer.checkpoint_callback
    checkpoint = (callback.last_model_path or callback.best_model_path) if callback else ""
    if not checkpoint or not Path(checkpoint).is_file():
        raise RuntimeError(f"training {config} wrote no checkpoint (ModelCheckpoint missing?)")
    return Path(checkpoint)


@dataclass(frozen=True)
class DemoModel:
    """One entry of the demo config's ``models:``: a shipped weights file (in the assets
    folder), the config that trains it, what its training takes from models trained before it
    (``train_args``: constructor argument -> weights file), and whether it is a row of the table
    (``overrides``: inference settings for the demo; ``{assets}`` in a value is the folder)."""

    name: str
    weights: str
    config: str
    overrides: dict[str, Any] = field(default_factory=dict)
    train_args: dict[str, str] = field(default_factory=dict)
    evaluate: bool = True


def demo_models(config: dict[str, Any]) -> list[DemoModel]:
    """The ``models:`` section of a demo config, in row (and training) order."""
    entries = config.get("models")
    if not entries:
        raise ValueError("the demo config has no models: section (configs/eval/demo.yaml)")
    return [DemoModel(**entry) for entry in entries]


def train_assets(
    assets: Path, runs: Path, models: list[DemoModel], started: float
) -> dict[str, Path]:
    """Train each model with its config, in order, and export it to ``assets``."""
    from faceinpaint.lit.weights import export_weights

    paths = {}
    for step, model in enumerate(models, start=1):
        overrides = []
        for argument, weights in model.train_args.items():
            overrides += [f"--model.init_args.{argument}", str(assets / weights)]
        say(f"training {step}/{len(models)}: {model.name} ({model.config}) ...", started)
        checkpoint = train(resolve_config(model.config), runs, overrides)
        paths[model.name] = export_weights(checkpoint, assets / model.weights)
        say(f"trained {model.name}: {checkpoint} -> {paths[model.name]}", started)
    return paths


def demo(
    out: str = "outputs/demo",
    train: bool = False,
    assets: str | None = None,
    protocol_config: str = "configs/eval/demo.yaml",
    baselines: tuple[str, ...] = FILLS_WITHOUT_BANK,
    limit: int | None = 64,
    threads: int | None = 2,
    device: str = "cpu",
    require_ahead: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate the shipped (or, with ``train``, freshly trained) models against classical fills.

    Args:
        out: folder of the table (thesis.md), image grids, results.jsonl and training runs.
        train: retrain every model of the config from scratch first (in its order), and write
            their weights to ``assets``.
        assets: folder of the ``*-demo.safetensors`` files (default: the package's
            ``faceinpaint/assets``).
        protocol_config: the demo config: ``protocol:``, ``data:`` and ``models:`` (each model's weights
            file, training config and demo inference settings, e.g. the DCGAN search's
            ``candidates: 4, iterations: 10`` from the latent encoder's estimate).
        baselines: the classical fills compared.
        limit: evaluate the first ``limit`` faces of the split under each mask (None: all).
        threads: torch CPU threads (None keeps torch's choice).
        device: where the evaluation runs.
        require_ahead: exit with status 1 when a learned method is not ahead of the best
            classical fill on hole PSNR and hole SSIM outside the 95 % intervals (CI's quality
            gate); false only reports it.

    Returns the result rows.
    """
    started = time.perf_counter()
    say("starting: load or train the models, then inpaint the embedded faces", started)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        folder = Path(assets) if assets is not None else ASSETS
        out_dir = Path(out)
        sections = yaml.safe_load(resolve_config(protocol_config).read_text())
        models = demo_models(sections)
        if train:
            train_assets(folder, out_dir / "runs", models, started)
        missing = [str(folder / m.weights) for m in models if not (folder / m.weights).is_file()]
        if missing:
            raise FileNotFoundError(
                f"shipped weights {missing} not found; run `faceinpaint demo --train true`"
            )
        return _evaluate(
            out_dir, sections, models, folder, baselines, limit, device, started, require_ahead
        )
    finally:
        torch.set_num_threads(previous_threads)


def _evaluate(
    out_dir: Path,
    sections: dict[str, Any],
    models: list[DemoModel],
    assets: Path,
    baselines: tuple[str, ...],
    limit: int | None,
    device: str,
    started: float,
    require_ahead: bool,
) -> list[dict[str, Any]]:
    from faceinpaint.data.datamodule import FaceDataModule
    from faceinpaint.eval.protocols import as_protocol
    from faceinpaint.eval.runner import evaluate

    protocol = as_protocol(sections["protocol"])
    data = FaceDataModule(**sections.get("data", {}))
    say(f"drawing the embedded {protocol.split} faces (once; cached after)", started)
    available = len(data.dataset(protocol.split))
    n = available if limit is None else min(limit, available)
    masks = [task.mask for task in protocol.tasks()]
    checkpoints = [
        {
            "path": str(assets / model.weights),
            "overrides": {
                key: value.format(assets=assets) if isinstance(value, str) else value
                for key, value in model.overrides.items()
            },
        }
        for model in models
        if model.evaluate
    ]
    settings = "; ".join(
        f"{m.name} with {', '.join(f'{k} {v}' for k, v in m.overrides.items())}"
        for m in models
        if m.evaluate and m.overrides
    )
    names = [m.name for m in models if m.evaluate]
    say(
        f"evaluating {len(names) + len(baselines)} methods ({', '.join([*names, *baselines])}) "
        f"on {n} faces x {len(masks)} masks ({', '.join(masks)}); {settings}; a bar per mask "
        "shows the time left",
        started,
    )
    rows = evaluate(
        data=data,
        protocol=protocol,
        checkpoints=checkpoints,
        baselines=tuple(baselines),
        limit=limit,
        batch_size=16,  # the progress bar moves every 16 faces
        device=device,
        out=str(out_dir),
        quiet=True,  # the table is thesis.md; the verdicts below sum it up
    )
    lines, behind = verdicts(rows, baselines)
    for line in lines:
        say(line, started)
    say(f"done; table {out_dir / 'thesis.md'}, grids {out_dir}/thesis-<mask>.png", started)
    if behind and require_ahead:
        raise SystemExit(
            f"demo: {len(behind)} learned result(s) not ahead of the best classical fill outside "
            f"the 95 % intervals (see the lines above; --require_ahead false only reports it)"
        )
    return rows


def verdicts(rows: list[dict[str, Any]], baselines: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Per mask, each learned method's hole PSNR / SSIM against the best classical fill's:
    ``(lines, behind)``, one line per learned method and mask, and those of them not ahead.

    Ahead means ahead outside the intervals, on both metrics: the method's mean minus its 95 %
    half-width above the best fill's mean plus its own (a margin of the two half-widths, about
    1-1.5 dB and 0.04-0.05 SSIM on the demo's 64 faces).
    """

    def mean(row: dict[str, Any], metric: str) -> float:
        return row["metrics"][metric]["mean"]

    def low(row: dict[str, Any], metric: str) -> float:
        return mean(row, metric) - row["metrics"][metric].get("ci95", 0.0)

    def high(row: dict[str, Any], metric: str) -> float:
        return mean(row, metric) + row["metrics"][metric].get("ci95", 0.0)

    lines, behind = [], []
    for mask in dict.fromkeys(row["mask"] for row in rows):
        here = [row for row in rows if row["mask"] == mask]
        classical = [row for row in here if row["method"] in baselines]
        if not classical:
            continue
        psnr_best = max(classical, key=lambda row: mean(row, "psnr_hole"))
        ssim_best = max(classical, key=lambda row: mean(row, "ssim_hole"))
        for row in here:
            if row["method"] in baselines:
                continue
            psnr, ssim = mean(row, "psnr_hole"), mean(row, "ssim_hole")
            ahead = low(row, "psnr_hole") > high(psnr_best, "psnr_hole") and low(
                row, "ssim_hole"
            ) > high(ssim_best, "ssim_hole")
            line = (
                f"{mask}: {row['method']} hole PSNR {psnr:.2f} dB, hole SSIM {ssim:.3f}; best "
                f"classical {mean(psnr_best, 'psnr_hole'):.2f} dB ({psnr_best['method']}), "
                f"{mean(ssim_best, 'ssim_hole'):.3f} ({ssim_best['method']}): "
                + ("ahead on both" if ahead else "NOT ahead on both (95 % intervals)")
            )
            lines.append(line)
            if not ahead:
                behind.append(line)
    return lines, behind
