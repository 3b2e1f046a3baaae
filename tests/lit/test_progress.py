"""The curriculum progress bar: one bar over every generator update, with the stage."""

from __future__ import annotations

import re

import lightning.pytorch as pl
import torch

from faceinpaint.lit.curriculum import stage_at
from faceinpaint.lit.progress import CurriculumProgressBar, curriculum_progress_bar


class Clocked(pl.LightningModule):
    """A curriculum-like module: one generator update per batch, boundaries (2, 4, 7)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.boundaries = (2, 4, 7)
        self.generator_updates = 0

    @property
    def curriculum_stage(self) -> int:
        return stage_at(self.generator_updates, self.boundaries)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.generator_updates += 1
        if self.generator_updates >= self.boundaries[-1]:
            self.trainer.should_stop = True
        return self.layer(batch[0]).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def configure_callbacks(self) -> list[pl.Callback]:
        return curriculum_progress_bar(self.trainer)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(3, 2)))


def test_bar_counts_generator_updates_of_the_whole_run(tmp_path, one_cpu_thread) -> None:
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
        default_root_dir=tmp_path, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Clocked())
    progress = trainer.progress_bar_callback
    assert isinstance(progress, CurriculumProgressBar)  # it replaced Lightning's bar
    bar = progress.train_progress_bar
    # 3 batches per epoch, 7 updates: the bar's total is the run's, not an epoch's
    assert (bar.total, bar.n) == (7, 7)
    assert bar.desc.startswith("stage 3/3, epoch 2")
    assert progress.get_metrics(trainer, trainer.lightning_module)["G updates"] == "7/7"


def test_no_bar_stays_no_bar(tmp_path, one_cpu_thread) -> None:
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
        default_root_dir=tmp_path, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Clocked())
    assert trainer.progress_bar_callback is None


def test_epoch_boundaries_show_neither_epoch_batches_nor_a_negative_rate(
    tmp_path, one_cpu_thread, capsys
) -> None:
    """Lightning's per-epoch reset showed "Epoch 1: 0/3" and a rate of -1e5 updates/s."""
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
        default_root_dir=tmp_path, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Clocked())
    captured = capsys.readouterr()
    lines = re.split(r"[\r\n]+", captured.out + captured.err)
    bar_lines = [line for line in lines if "/7" in line or "Epoch" in line]
    assert bar_lines and all(line.startswith("stage ") for line in bar_lines), bar_lines
    assert not any(re.search(r"-\d[\d.]*\w* ?G update/s", line) for line in bar_lines), bar_lines
