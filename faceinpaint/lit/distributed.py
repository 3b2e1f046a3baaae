"""Callbacks that make the LightningModules correct under DDP without touching them.

* :class:`SeedPerRank`: LightningCLI seeds every rank with the same ``seed_everything``, so
  (model init aside, which DDP broadcasts anyway) every rank would draw the *same* latents, hole
  noise, critic noise and flips: W ranks would train on W copies of one noise batch. At the start
  of training each rank's torch / numpy / random generators are reseeded with
  ``seed + rank``. ``PL_GLOBAL_SEED`` is left alone: the train ``DistributedSampler`` reads it
  and must shuffle identically on every rank, and loader workers are already seeded per rank
  by ``seed_everything(workers=True)``.
* :class:`MergeRankResults`: the prediction writer writes, per rank, ``<index>.png`` files and
  ``results.rank<r>.jsonl`` (``faceinpaint.lit.writers``). After the last test/predict batch the
  ranks exchange the indices they searched, rank 0 checks that each index was searched exactly
  once and that each has its row, and writes one ``results.jsonl`` sorted by index.

And :func:`without_slurm_requeue`, the trainer plugins that leave requeueing a SLURM job to
its batch script.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.plugins.environments import ClusterEnvironment, SLURMEnvironment
from torch import Tensor

from faceinpaint.batch import INDEX
from faceinpaint.io import write_jsonl
from faceinpaint.lit.writers import InpaintingWriter

RESULTS_FILE = "results.jsonl"


def without_slurm_requeue(plugins: Any) -> Any:
    """The trainer's ``plugins`` plus ``SLURMEnvironment(auto_requeue=False)`` in a SLURM job
    that names no cluster environment of its own; else ``plugins`` unchanged.

    Lightning's own requeue (on SIGUSR1) writes ``hpc_ckpt_N.ckpt`` into the working folder
    and resumes from it past the project's resume checks. A job's time limit and pre-emption
    go through SIGTERM instead: ``last.ckpt`` is saved, the batch script requeues the job and
    resumes with ``--ckpt_path`` (``configs/ddp/slurm-2x4.sbatch``)."""
    if not SLURMEnvironment.detect():
        return plugins
    listed = [] if plugins is None else list(plugins) if isinstance(plugins, list) else [plugins]
    if any(isinstance(plugin, ClusterEnvironment) for plugin in listed):
        return plugins
    return [*listed, SLURMEnvironment(auto_requeue=False)]


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s generators: ``seed + rank`` (rank 0 keeps the configured seed)."""
    return seed + rank


class SeedPerRank(pl.Callback):
    """Reseed torch, numpy and random with ``seed + global_rank`` when training starts (W > 1 only).

    Args:
        seed: base seed; None = the one ``seed_everything`` set (``PL_GLOBAL_SEED``, else 0).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size == 1:
            return
        base = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        seed = rank_seed(base, trainer.global_rank)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)  # every CUDA device too


def rank_file(directory: Path, rank: int, world_size: int) -> Path:
    """The JSON lines a rank writes: ``results.jsonl`` alone, ``results.rank<r>.jsonl`` under DDP."""
    return directory / (RESULTS_FILE if world_size == 1 else f"results.rank{rank}.jsonl")


def merge_rank_results(
    directory: Path, searched: Sequence[Sequence[int]], keep_rank_files: bool = False
) -> list[dict[str, Any]]:
    """Merge the ranks' JSON lines under ``directory`` into ``results.jsonl``, sorted by index.

    Args:
        directory: where the ranks wrote ``<index>.png`` and their JSON lines.
        searched: per rank, the dataset indices it searched (``len(searched)`` = world size).
        keep_rank_files: leave ``results.rank<r>.jsonl`` in place after merging.

    Raises ``ValueError`` naming the indices searched more than once, searched without a row or
    image, or with a row but never searched.
    """
    world_size = len(searched)
    everyone = [index for indices in searched for index in indices]
    duplicated = sorted(i for i, times in Counter(everyone).items() if times > 1)
    if duplicated:
        raise ValueError(f"indices searched by more than one rank or twice: {duplicated[:20]}")
    rows: dict[int, dict[str, Any]] = {}
    for rank in range(world_size):
        path = rank_file(directory, rank, world_size)
        if not path.exists():
            if searched[rank]:
                raise ValueError(
                    f"rank {rank} searched {len(searched[rank])} images but wrote no {path}"
                )
            continue
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["index"] in rows:
                raise ValueError(f"index {row['index']} has more than one row (second in {path})")
            rows[row["index"]] = row
    missing = sorted(set(everyone) - set(rows))
    extra = sorted(set(rows) - set(everyone))
    no_image = sorted(i for i in everyone if not (directory / f"{i:06d}.png").exists())
    if missing or extra or no_image:
        raise ValueError(
            f"results under {directory} do not match the searched indices: no row for "
            f"{missing[:20]}, rows never searched {extra[:20]}, no image for {no_image[:20]}"
        )
    merged = [rows[i] for i in sorted(rows)]
    write_jsonl(merged, directory / RESULTS_FILE)
    if world_size > 1 and not keep_rank_files:
        for rank in range(world_size):
            rank_file(directory, rank, world_size).unlink(missing_ok=True)
    return merged


class MergeRankResults(pl.Callback):
    """After ``test`` / ``predict``, one ``results.jsonl`` from every rank's search results.

    Reads where the run's :class:`faceinpaint.lit.writers.InpaintingWriter` wrote (the
    DCGAN's adds one itself). Single-process runs are checked the same way (each index once,
    with its row and image).

    Args:
        keep_rank_files: leave the per-rank JSON lines beside the merged file.
    """

    def __init__(self, keep_rank_files: bool = False) -> None:
        self.keep_rank_files = keep_rank_files
        self._searched: list[int] = []
        self.merged: list[dict[str, Any]] | None = None  # rank 0, after the epoch

    def _start(self) -> None:
        self._searched = []
        self.merged = None

    def _record(self, batch: dict[str, Tensor]) -> None:
        self._searched.extend(batch[INDEX].tolist())

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start()

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._record(batch)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._record(batch)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._merge(trainer, pl_module, "test")

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._merge(trainer, pl_module, "predict")

    def _merge(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        writers = [c for c in trainer.callbacks if isinstance(c, InpaintingWriter)]
        if not writers:
            raise ValueError("MergeRankResults needs an InpaintingWriter among the callbacks")
        directory = writers[0].directory(stage)
        searched: list[list[int]] = [self._searched]
        if trainer.world_size > 1:
            searched = [[] for _ in range(trainer.world_size)]
            dist.all_gather_object(searched, self._searched)  # also: every rank wrote its files
        error: list[str | None] = [None]
        if trainer.is_global_zero:
            try:
                self.merged = merge_rank_results(directory, searched, self.keep_rank_files)
            except ValueError as failure:
                error[0] = str(failure)
        if trainer.world_size > 1:
            dist.broadcast_object_list(error, src=0)  # every rank fails together, none waits
        if error[0] is not None:
            raise ValueError(error[0])
