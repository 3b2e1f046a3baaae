"""What an evaluation leaves behind: JSON lines, a markdown table, labelled image grids.

Every file is written through ``faceinpaint.io`` (a temporary file beside its target, renamed into
place), so a crash never leaves half a file and a reader never sees one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from faceinpaint.metrics import METRICS, MetricSpec

CELLS_DEFINITION = (
    "Cells: mean ± half-width of the 95 % confidence interval (1.96 std / √n), and the max over "
    "the n faces in brackets."
)
TIMING_DEFINITION = (
    "s / face: wall seconds of the method's fills over the faces (the device synchronised around "
    "each batch; data loading and metrics not counted)."
)


def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[MetricSpec]:
    """The registered metrics a table of ``rows`` shows, in ``METRICS`` order: every default
    one, and each optional one that some row has."""
    return [
        spec
        for spec in METRICS.values()
        if not spec.optional or any(spec.name in row["metrics"] for row in rows)
    ]


def metric_definitions(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The definitions of the registered metrics the rows have, each once, in ``METRICS`` order."""
    present = {name for row in rows for name in row["metrics"]}
    return list(
        dict.fromkeys(s.definition for s in METRICS.values() if s.name in present and s.definition)
    )


# ----------------------------------------------------------------------------- table
def format_stat(stat: Mapping[str, float], decimals: int) -> str:
    """``mean ± ci95 (max)`` of one ``InpaintingMetrics.summary()`` entry; a set-level metric
    (FID: ``{"value", "n"}``) is its value alone."""
    if "value" in stat:
        return f"{stat['value']:.{decimals}f}"
    return f"{stat['mean']:.{decimals}f} ± {stat['ci95']:.{decimals}f} ({stat['max']:.{decimals}f})"


def format_seconds(seconds: float | None) -> str:
    """Wall seconds per face, with three significant figures (``–`` when not timed)."""
    if seconds is None:
        return "–"
    return f"{seconds:.3g}"


def method_label(row: Mapping[str, Any]) -> str:
    """The method's name, with the last three parts of its checkpoint path (less a
    ``checkpoints`` folder) when it has one: ``vaegan (`vaegan-smoke/version_0/last.ckpt`)``,
    ``…/`` in front when parts were left out, the root when none were (``/tmp/g.safetensors``),
    and ``trained on k/n`` when k of its n faces were training faces (``--allow_train_overlap``)."""
    checkpoint = row.get("checkpoint")
    if not checkpoint:
        return row["method"]
    path = Path(checkpoint)
    parts = [part for part in path.parts[1 if path.anchor else 0 :] if part != "checkpoints"]
    shown = "/".join(parts[-3:])
    if len(parts) > 3:
        shown = "…/" + shown
    elif path.anchor:
        shown = path.anchor + shown
    label = f"{row['method']} (`{shown}`)"
    if row.get("train_overlap"):
        label += f" **trained on {row['train_overlap']}/{row['n']}**"
    return label


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One table per protocol: a row per (mask type, method), whole-image then hole-only columns."""
    blocks = []
    protocols = list(dict.fromkeys(row["protocol"] for row in rows))
    for protocol in protocols:
        chosen = [row for row in rows if row["protocol"] == protocol]
        columns = metric_columns(chosen)
        timed = any("seconds_per_face" in row for row in chosen)
        header = ["mask", "method", "n", *(spec.heading for spec in columns)]
        header += ["s / face"] if timed else []
        lines = [
            f"**{protocol}**",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---", "---", "--:"] + ["--:"] * (len(header) - 3)) + "|",
        ]
        for row in chosen:
            cells = [row["mask"], method_label(row), str(row["n"])]
            for spec in columns:
                stat = row["metrics"].get(spec.name)
                cells.append(format_stat(stat, spec.decimals) if stat else "–")
            if timed:
                cells.append(format_seconds(row.get("seconds_per_face")))
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def paired_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-face differences against the best classical fill of each metric, one line per
    (protocol, mask, method) that has them; empty when none has."""
    chosen = [row for row in rows if row.get("paired")]
    if not chosen:
        return ""
    paired = {name for row in chosen for name in row["paired"]}
    columns = [spec for spec in METRICS.values() if spec.name in paired]
    lines = [
        "Paired differences, method minus the best classical fill of each metric (per face, "
        "same faces and masks; mean ± 95 % CI half-width):",
        "",
        "| protocol | mask | method | " + " | ".join(f"Δ {s.heading}" for s in columns) + " |",
        "|---|---|---|" + "--:|" * len(columns),
    ]
    for row in chosen:
        cells = []
        for spec in columns:
            stat = row["paired"].get(spec.name)
            cells.append(
                f"{stat['mean']:+.{spec.decimals}f} ± {stat['ci95']:.{spec.decimals}f} "
                f"vs {stat['against']}"
                if stat
                else "–"
            )
        lines.append(
            f"| {row['protocol']} | {row['mask']} | {method_label(row)} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def comparison_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The papers' figures for the protocol (its ``reported`` rows), quoted, with this run's rows
    of the same masks under them; empty when the protocol quotes none.

    The papers do not say on what their figures are computed, so each measured row shows the
    three candidates side by side: the composited whole image, the raw output's whole image and
    the hole alone.
    """
    reported = rows[0]["config"]["protocol"].get("reported", []) if rows else []
    evaluated = {row["mask"] for row in rows}
    masks = [mask for mask in dict.fromkeys(row["mask"] for row in reported) if mask in evaluated]
    if not masks:
        return ""

    def pair(stats: Mapping[str, Any], psnr: str, ssim: str) -> str:
        if psnr not in stats or ssim not in stats:
            return "–"
        return f"{stats[psnr]['mean']:.2f} / {stats[ssim]['mean']:.3f}"

    lines = [
        "Papers' figures (*reported*: quoted from the documents, not measured here) and this "
        "run's (*measured*), PSNR (dB) / SSIM:",
        "",
        "| mask | row | reported | composite, whole image | raw output, whole image | hole |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for mask in masks:
        for row in (r for r in reported if r["mask"] == mask):
            label = (
                f"*reported* {row['method']} ({row['statistic']}; {row['source']}; "
                f"definition: {row['definition']})"
            )
            lines.append(f"| {mask} | {label} | {row['psnr']:g} / {row['ssim']:g} | | | |")
        for row in (r for r in rows if r["mask"] == mask):
            stats = row["metrics"]
            lines.append(
                f"| {mask} | *measured* {method_label(row)} (mean of n = {row['n']}) | | "
                f"{pair(stats, 'psnr', 'ssim')} | {pair(stats, 'psnr_raw', 'ssim_raw')} | "
                f"{pair(stats, 'psnr_hole', 'ssim_hole')} |"
            )
    return "\n".join(lines) + "\n"


def provenance_lines(provenance: Mapping[str, Any]) -> list[str]:
    """Bullet lines naming the command, data, hardware, date and revision."""
    labels = (
        ("command", "Command"),
        ("data", "Data"),
        ("hardware", "Hardware"),
        ("date", "Date"),
        ("git_revision", "Revision"),
        ("seconds", "Wall time (s)"),
    )
    lines = []
    for key, label in labels:
        if key in provenance:
            value = provenance[key]
            lines.append(f"- {label}: `{value}`" if key == "command" else f"- {label}: {value}")
    return lines


def markdown_report(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """A README-ready section: title, provenance, the tables, definitions and notes."""
    parts = [f"### {title}", "", *provenance_lines(provenance), ""]
    comparison = comparison_table(rows)
    if comparison:
        parts.append(comparison)
    parts.append(markdown_table(rows) if rows else "(no results)\n")
    paired = paired_table(rows)
    if paired:
        parts.append(paired)
    parts.append(" ".join([CELLS_DEFINITION, *metric_definitions(rows), TIMING_DEFINITION]))
    if notes:
        parts.extend(["", *(f"- {note}" for note in notes)])
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- grids
def images_to_uint8(images: Tensor) -> np.ndarray:
    """(N,3,H,W) in [0, 1] -> (N,H,W,3) uint8 on the host."""
    array = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


def grid_image(
    rows: Sequence[tuple[str, Tensor]], padding: int = 2, label_width: int | None = None
) -> np.ndarray:
    """A labelled grid: one row per ``(label, (N,3,H,W) images in [0, 1])``, one column per image.

    Returns (rows*(H+p)+p, label_width + N*(W+p)+p, 3) uint8 on a white background; each label is
    written at the left of its row. ``label_width`` (pixels) defaults to what the longest label
    needs in the default font (6 px a character), at least 96.
    """
    if not rows:
        raise ValueError("grid_image needs at least one row")
    if label_width is None:
        label_width = max(96, 6 * max(len(label) for label, _ in rows) + 8)
    count, _, height, width = rows[0][1].shape
    for label, images in rows:
        if images.shape[0] != count or tuple(images.shape[-2:]) != (height, width):
            raise ValueError(
                f"every grid row must hold {count} images of {height}x{width}; row {label!r} "
                f"has {tuple(images.shape)}"
            )
    canvas = np.full(
        (
            len(rows) * (height + padding) + padding,
            label_width + count * (width + padding) + padding,
            3,
        ),
        255,
        dtype=np.uint8,
    )
    for r, (_, images) in enumerate(rows):
        top = padding + r * (height + padding)
        for c, tile in enumerate(images_to_uint8(images)):
            left = label_width + padding + c * (width + padding)
            canvas[top : top + height, left : left + width] = tile
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for r, (label, _) in enumerate(rows):
        top = padding + r * (height + padding)
        draw.text((4, top + height // 2 - 6), label[: label_width // 6], fill=(0, 0, 0))
    return np.asarray(picture)
