"""Pictures of numbers: learning curves of a run, the latent search's loss, eval bar charts.

``faceinpaint plot RUN_DIR`` draws every scalar a run logged (CSV ``metrics.csv``, TensorBoard
event files or wandb ``run-<id>.wandb`` files, found anywhere under ``RUN_DIR``) against the
step, one panel per metric, into ``RUN_DIR/curves.png``. A wandb run's checkpoint folder
``runs/<name>`` finds the run's files in ``runs/wandb`` by its name. ``faceinpaint eval`` calls :func:`plot_eval_bars` for ``<protocol>.png``
beside its table and :func:`plot_search_history` for the DCGAN search's loss.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from faceinpaint.eval.wandb_files import read_wandb_scalars, run_files, run_name  # noqa: E402
from faceinpaint.io import atomic_write  # noqa: E402
from faceinpaint.metrics import METRICS, MetricSpec  # noqa: E402

Series = dict[str, tuple[list[int], list[float]]]  # metric -> (steps, values)


def bar_metrics() -> list[MetricSpec]:
    """The registered metrics with ``bar=True``, in ``METRICS`` order: a row of panels each."""
    return [spec for spec in METRICS.values() if spec.bar]


def save_figure(figure: plt.Figure, path: str | Path) -> Path:
    """The figure as a PNG at ``path`` (written atomically), then closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    with atomic_write(path, "wb") as file:
        file.write(buffer.getvalue())
    return Path(path)


def read_csv_scalars(path: Path) -> Series:
    """Every column of a Lightning ``metrics.csv`` but epoch/step, as (steps, values)."""
    series: Series = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("epoch", "step") or value in ("", None):
                    continue
                steps, values = series.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    return series


def read_tensorboard_scalars(path: Path) -> Series:
    """Every scalar tag of one TensorBoard event file, as (steps, values)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(path), size_guidance={"scalars": 0})
    events.Reload()
    series: Series = {}
    for tag in events.Tags()["scalars"]:
        scalars = events.Scalars(tag)
        series[tag] = ([s.step for s in scalars], [s.value for s in scalars])
    return series


def wandb_run_files(run_dir: Path) -> list[Path]:
    """The wandb run files under ``run_dir``; for the checkpoint folder ``runs/<name>`` of a
    ``WandbLogger`` run (its files are in ``runs/wandb``), those of the runs named ``<name>``
    (one file per start of the run: resumed runs continue under the same name)."""
    files = run_files(run_dir)
    if files or not (run_dir.parent / "wandb").is_dir():
        return files
    return [path for path in run_files(run_dir.parent / "wandb") if run_name(path) == run_dir.name]


def read_run_scalars(run_dir: str | Path) -> Series:
    """The scalars of every CSV, TensorBoard and wandb log of ``run_dir``, merged by name."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotADirectoryError(f"run folder {str(run_dir)!r} does not exist")
    series: Series = {}
    files = sorted(run_dir.rglob("metrics.csv")) + sorted(run_dir.rglob("events.out.tfevents.*"))
    readers = {"metrics.csv": read_csv_scalars}
    for path in [*files, *wandb_run_files(run_dir)]:
        read = readers.get(path.name) or (
            read_wandb_scalars if path.suffix == ".wandb" else read_tensorboard_scalars
        )
        for key, (steps, values) in read(path).items():
            merged = series.setdefault(key, ([], []))
            merged[0].extend(steps)
            merged[1].extend(values)
    if not series:
        raise ValueError(
            f"no scalars under {str(run_dir)!r}: expected a CSV logger's metrics.csv, "
            "TensorBoard events.out.tfevents.* files or a wandb run's run-<id>.wandb files"
        )
    return series


def plot_learning_curves(series: Mapping[str, tuple[list[int], list[float]]], title: str) -> Any:
    """One panel per metric (sorted by name: train/ before val/), value against step."""
    names = sorted(series)
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names, strict=False):
        steps, values = series[name]
        order = sorted(range(len(steps)), key=steps.__getitem__)
        marker = "o" if len(steps) < 30 else None
        axis.plot([steps[i] for i in order], [values[i] for i in order], marker=marker, ms=3)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(names) :]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_search_history(history: Tensor, title: str) -> Any:
    """The latent search's loss against its iterations: ``history`` (K,B,N) total loss of every
    candidate before each of K steps; per face the lowest loss over its candidates (thin), and
    the median over faces (thick)."""
    best = history.detach().float().amin(dim=2).cpu()  # (K, B)
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    steps = range(1, best.shape[0] + 1)
    axis.plot(steps, best.numpy(), color="tab:blue", alpha=0.3, lw=0.8)
    axis.plot(steps, best.median(dim=1).values.numpy(), color="tab:blue", lw=2, label="median face")
    if bool((best > 0).all()):
        axis.set_yscale("log")
    axis.set_xlabel("search iteration")
    axis.set_ylabel("lowest candidate loss")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_eval_bars(rows: Sequence[Mapping[str, Any]], title: str) -> Any:
    """One panel per (bar metric, mask): a bar per method, the mean with its 95 % interval; the
    title's arrow says which way is better."""
    masks = list(dict.fromkeys(row["mask"] for row in rows))
    metrics = bar_metrics()
    figure, axes = plt.subplots(
        len(metrics),
        len(masks),
        figsize=(
            max(3.2, 0.45 * len(rows) / len(masks) + 1.5) * len(masks),
            3.0 * len(metrics),
        ),
        squeeze=False,
    )
    for column, mask in enumerate(masks):
        chosen = [row for row in rows if row["mask"] == mask]
        labels = [row["method"] for row in chosen]
        for line, spec in enumerate(metrics):
            axis = axes[line][column]
            stats = [row["metrics"].get(spec.name) or {} for row in chosen]
            means = [stat.get("mean", stat.get("value", math.nan)) for stat in stats]
            errors = [stat.get("ci95", 0.0) for stat in stats]
            axis.bar(range(len(chosen)), means, yerr=errors, capsize=3, color="tab:blue")
            axis.set_xticks(range(len(chosen)), labels, rotation=45, ha="right", fontsize=8)
            axis.set_title(f"{mask}: {spec.heading} {spec.arrow}", fontsize=9)
            axis.tick_params(axis="y", labelsize=8)
            axis.grid(axis="y", alpha=0.3)
    figure.suptitle(f"{title} (mean and 95 % interval over the faces)", fontsize=10)
    figure.tight_layout()
    return figure


def plot(run_dir: str, out: str | None = None) -> Path:
    """Learning curves of a training run: every scalar its CSV, TensorBoard or wandb logs hold.

    Args:
        run_dir: the run's folder (e.g. ``runs/vaegan-smoke/version_0``, a wandb run's
            ``runs/wandb/offline-run-...``, or a wandb run's checkpoint folder
            ``runs/<name>``; searched recursively).
        out: the PNG to write (default ``<run_dir>/curves.png``).
    """
    series = read_run_scalars(run_dir)
    path = Path(out) if out else Path(run_dir) / "curves.png"
    save_figure(plot_learning_curves(series, f"{run_dir}: {len(series)} scalars"), path)
    print(f"wrote {path}")
    return path
