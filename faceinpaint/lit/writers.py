"""The files of ``test`` and ``predict``: one prediction writer for every inpainting module.

Per image ``<index>.png`` (the composited result) and ``<index>_mask.png`` (white = hole), and
``results.jsonl`` (``results.rank<r>.jsonl`` under DDP; ``MergeRankResults`` merges them)
rewritten with every row so far, under ``<output_dir>/<stage>/``. A module's step returns an
:class:`InpaintingOutput`-shaped dict (``index`` and ``inpainted``, optional per-image ``row``
values); the writer writes, the module never does.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from faceinpaint.batch import MASK, to_unit
from faceinpaint.io import write_text
from faceinpaint.lit.images import save_png
from faceinpaint.lit.run_dir import shared_run_directory

Stage = Literal["test", "predict"]
ROWS = "rows"  # key of the per-image JSON values in a step's output: name -> (B,) list


class InpaintingWriter(BasePredictionWriter):
    """Writes each ``test`` / ``predict`` batch's results as it ends (rank by rank).

    Args:
        output_dir: where to write; None = the run's directory (logger's, else the trainer's
            root) + ``/inpainted``.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self._root: Path | None = None
        self._rows: list[dict[str, Any]] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # a collective under DDP (a broadcast from rank 0): found once here, on every rank
        if self.output_dir is None:
            self._root = shared_run_directory(trainer) / "inpainted"
        else:
            self._root = Path(self.output_dir)

    def directory(self, stage: Stage) -> Path:
        """Where ``stage``'s files go."""
        if self._root is None:
            raise RuntimeError("InpaintingWriter.directory before setup: attach it to a Trainer")
        return self._root / stage

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows = []

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.write("test", trainer, outputs, batch)

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        self.write("predict", trainer, prediction, batch)

    def write(
        self, stage: Stage, trainer: pl.Trainer, output: dict[str, Any], batch: dict[str, Tensor]
    ) -> None:
        """The batch's images, masks and rows; ``results.jsonl`` rewritten with every row so far."""
        directory = self.directory(stage)
        checkpoint = trainer.ckpt_path
        mask_spec = _mask_spec(trainer, stage)
        inpainted = to_unit(output["inpainted"]).cpu()
        masks = batch[MASK].cpu()
        values = output.get(ROWS, {})
        for row, index in enumerate(output["index"].tolist()):
            save_png(inpainted[row], directory / f"{index:06d}.png")
            save_png(masks[row], directory / f"{index:06d}_mask.png")
            self._rows.append(
                {"index": index}
                | {name: column[row] for name, column in values.items()}
                | {"mask": mask_spec, "checkpoint": checkpoint}
            )
        name = (
            "results.jsonl"
            if trainer.world_size == 1
            else f"results.rank{trainer.global_rank}.jsonl"
        )
        write_text("".join(json.dumps(row) + "\n" for row in self._rows), directory / name)


def _mask_spec(trainer: pl.Trainer, stage: Stage) -> dict[str, Any] | None:
    masks = getattr(getattr(trainer, "datamodule", None), "masks", None)
    if not masks or stage not in masks:
        return None
    return asdict(masks[stage])
