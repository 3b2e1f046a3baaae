"""Benchmark rows, the environment each names, and the markdown table printed as rows arrive."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from faceinpaint.bench.timing import Spread, load_average
from faceinpaint.device import malloc_setting
from faceinpaint.provenance import cpu_name

# Dense peak FLOP/s by GPU name fragment (vendor datasheets, SXM parts); None where not listed.
PEAK_FLOPS = {
    "H200": {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12},
    "H100": {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12},
    "A100": {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
}

TABLE_HEADER = (
    "| device | benchmark | variant | median | min | max | n | unit | load | note |\n"
    "|---|---|---|---:|---:|---:|---:|---|---:|---|\n"
)


@dataclass
class Row:
    """One measurement: the median of ``n`` timed runs (or rounds), with their min and max.

    A ratio is a row of its own (unit ``x``), computed round by round from variants timed in the
    same interleaved run. ``load_1min`` is the machine's load when the row was finished.
    """

    benchmark: str
    device: str
    variant: str
    value: float | None
    unit: str
    low: float | None = None
    high: float | None = None
    n: int = 0
    note: str = ""
    load_1min: float | None = field(default_factory=load_average)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def measured(
        cls, benchmark: str, device: str, variant: str, spread: Spread, unit: str, **kwargs: Any
    ) -> Row:
        return cls(
            benchmark,
            device,
            variant,
            spread.median,
            unit,
            spread.low,
            spread.high,
            spread.n,
            **kwargs,
        )


def environment(device: torch.device, command: str) -> dict[str, Any]:
    """What each row names: hardware, torch version, date, the command, the cores."""
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{cpu_name()} ({torch.get_num_threads()} threads)"
    return {
        "hardware": hardware,
        "torch": torch.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "cores": os.cpu_count(),
        "malloc": malloc_setting(),
    }


def peak_flops(hardware: str, precision: str) -> float | None:
    for name, peaks in PEAK_FLOPS.items():
        if name in hardware:
            return peaks.get(precision)
    return None


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def markdown_row(row: dict[str, Any]) -> str:
    """One table line; a load above half the cores is flagged in the note."""
    note = row["note"]
    load, cores = row.get("load_1min"), row.get("cores") or 1
    if load is not None and load > 0.5 * cores:
        note = f"{note}; machine loaded (load {load:.1f} on {cores} cores)".lstrip("; ")
    value = "n/a" if row["value"] is None else _number(row["value"])
    return (
        f"| {row['device']} | {row['benchmark']} | {row['variant']} | {value} | "
        f"{_number(row['low'])} | {_number(row['high'])} | {row['n'] or ''} | {row['unit']} | "
        f"{'' if load is None else f'{load:.1f}'} | {note} |\n"
    )


def environment_lines(env: dict[str, Any]) -> str:
    """The lines above a device's table: hardware, torch, date, command."""
    return (
        f"Hardware: {env['hardware']}, {env['cores']} cores; torch {env['torch']}; "
        f"CPU malloc: {env.get('malloc', 'not recorded')}; {env['date']}; "
        f"command: `{env['command']}`\n\n"
    )


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, one line per row."""
    return TABLE_HEADER + "".join(markdown_row(row) for row in rows)
