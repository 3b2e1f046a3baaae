"""faceinpaint's ModelCheckpoint: last.ckpt holds the newest state, top-k selection unchanged."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from faceinpaint.lit.checkpoint import ModelCheckpoint


class Worsening(BoringModel):
    """Its validation score falls every epoch: only the first validation is the best."""

    def on_validation_epoch_end(self) -> None:
        self.log("score", -float(self.current_epoch))


def fit(module: pl.LightningModule, callback: ModelCheckpoint, **kwargs) -> None:
    options = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=3,
        limit_train_batches=4,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    pl.Trainer(callbacks=[callback], **options).fit(module)


def global_step(path: Path) -> int:
    return torch.load(path, weights_only=False, map_location="cpu")["global_step"]


@pytest.mark.parametrize("save_last", [True, "link"])
def test_last_is_the_newest_state_when_the_monitor_did_not_improve(tmp_path, save_last):
    callback = ModelCheckpoint(
        dirpath=tmp_path, monitor="score", mode="max", save_top_k=1, save_last=save_last
    )
    fit(Worsening(), callback)
    assert global_step(tmp_path / "last.ckpt") == 12  # 3 epochs x 4 batches
    assert Path(callback.best_model_path).name == "epoch=0-step=4.ckpt"
    assert global_step(callback.best_model_path) == 4
    assert not (tmp_path / "last.ckpt").is_symlink()


def test_last_is_written_when_training_stops_between_validations(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, monitor="score", mode="max", save_last=True)
    fit(Worsening(), callback, max_epochs=-1, max_steps=6)  # stops mid-epoch 2, no validation
    assert global_step(tmp_path / "last.ckpt") == 6
    assert global_step(callback.best_model_path) == 4


def test_an_improving_run_keeps_lightnings_files(tmp_path):
    class Improving(BoringModel):
        def on_validation_epoch_end(self) -> None:
            self.log("score", float(self.current_epoch))

    callback = ModelCheckpoint(dirpath=tmp_path, monitor="score", mode="max", save_last=True)
    fit(Improving(), callback)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=2-step=12.ckpt", "last.ckpt"]
    assert global_step(tmp_path / "last.ckpt") == 12
