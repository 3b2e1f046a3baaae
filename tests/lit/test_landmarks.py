"""LandmarkModule on the embedded faces: it learns, logs the three NMEs, and exports the network."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from faceinpaint.data import FaceDataModule
from faceinpaint.landmarks.network import LandmarkNet
from faceinpaint.lit.landmarks import LandmarkModule

TINY = {"widths": [8, 8, 16], "heatmap_stride": 2}


def _data() -> FaceDataModule:
    return FaceDataModule(
        image_size=32, batch_size=8, num_workers=0, synthetic_size=40, flip=False,
        train_mask={"kind": "random_square", "min_side": 0.25, "max_side": 0.5},
        val_mask={"kind": "random_square", "min_side": 0.5, "max_side": 0.5},
    )  # fmt: skip


def test_loss_goes_down_on_one_batch() -> None:
    torch.manual_seed(0)
    data = _data()
    data.setup("fit")
    batch = data.prepare_batch(next(iter(data.train_dataloader())), "train")
    model = LandmarkModule(**TINY, masked_fraction=0.0)
    model.log = lambda *args, **kwargs: None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = model.training_step(batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_fit_logs_nme_and_checkpoint_loads_without_lightning(tmp_path) -> None:
    pl.seed_everything(0)
    model = LandmarkModule(**TINY)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=2, limit_val_batches=1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=_data())
    metrics = trainer.callback_metrics
    for name in ("val/nme", "val/nme_center", "val/nme_mask"):
        assert torch.isfinite(metrics[name]) and metrics[name] > 0, name
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    net = LandmarkNet.from_checkpoint(tmp_path / "last.ckpt")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.eval()
    torch.testing.assert_close(net(x)[1], model.net(x)[1])
