"""The records of a wandb run kept on disk (``run-<id>.wandb`` in an offline or synced run's
folder), read without wandb's service: what the run was (group, job type, config), what it
defined (summaries) and every scalar it logged.

The file is wandb's append-only log: a 7-byte header (``:W&B``, magic ``0xBEE1``, version 0),
then 32 KiB blocks of chunks, each a 7-byte header (CRC-32, length, type: full / first /
middle / last) and its bytes; the chunks of one record hold one ``wandb.proto`` ``Record``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")  # CRC-32, length, type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
STEP_KEY = "trainer/global_step"  # Lightning's WandbLogger logs the trainer's step under it


def read_records(path: str | Path) -> Iterator[Any]:
    """Every record (``wandb.proto`` ``Record``) of a ``run-<id>.wandb`` file in order; a run
    cut off mid-record ends at the last whole one."""
    from wandb.proto import wandb_internal_pb2  # wandb takes ~0.5 s to import: only here

    data = Path(path).read_bytes()
    if not data.startswith(HEADER):
        raise ValueError(f"{str(path)!r} is not a wandb run file (no {HEADER!r} header)")
    offset, parts = len(HEADER), []
    while True:
        space = BLOCK - offset % BLOCK
        if space < CHUNK_HEADER.size:
            offset += space  # the block's zero padding
            continue
        if offset + CHUNK_HEADER.size > len(data):
            return
        _, length, kind = CHUNK_HEADER.unpack_from(data, offset)
        start = offset + CHUNK_HEADER.size
        if kind not in (FULL, FIRST, MIDDLE, LAST) or start + length > len(data):
            return
        parts.append(data[start : start + length])
        offset = start + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def run_files(folder: str | Path) -> list[Path]:
    """The ``run-<id>.wandb`` files under ``folder`` (a run's folder, or one holding runs)."""
    return sorted(Path(folder).rglob("run-*.wandb"))


def run_name(path: str | Path) -> str | None:
    """The display name of the run a run file records (None before its run record)."""
    for record in read_records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run.display_name
    return None


def read_wandb_scalars(path: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every numeric metric a run file logged, as (steps, values): the step is Lightning's
    ``trainer/global_step`` where the record has it, else wandb's own step."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in read_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        # a metric is one key; media (images, tables) are several: ["val/images", "width"], ...
        values = {
            item.key or item.nested_key[0]: json.loads(item.value_json)
            for item in record.history.item
            if item.key or len(item.nested_key) == 1
        }
        step = values.get(STEP_KEY, values.get("_step", record.history.step.num))
        for key, value in values.items():
            if key.startswith("_") or key in (STEP_KEY, "epoch"):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                steps, numbers = series.setdefault(key, ([], []))
                steps.append(int(step))
                numbers.append(float(value))
    return series
