"""Distil the dlib teacher (or the embedded set's exact landmarks) into ``LandmarkNet``.

Train: heatmap logistic loss against rendered Gaussians plus L1 on the soft-argmax coordinates,
with a fraction of the inputs damaged by the batch's training mask (as ``fill_hole`` would) so the
network learns to place landmarks on masked faces too. Validation logs NME against the served
landmarks on clean faces, under a center square and under the batch's ``val_mask``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from faceinpaint.batch import IMAGE, INDEX, LANDMARKS, LANDMARKS_FOUND, MASK, fill_hole
from faceinpaint.data.datamodule import checkpoint_frame
from faceinpaint.data.masks import MaskSpec, make_masks
from faceinpaint.data.provenance import FaceFrame
from faceinpaint.landmarks.heatmaps import render_heatmaps
from faceinpaint.landmarks.network import CHECKPOINT_KEY, LandmarkNet
from faceinpaint.lit.loading import read_checkpoint
from faceinpaint.lit.method import DeclaredModule, former_class
from faceinpaint.losses.landmark import landmark_nme

log = logging.getLogger(__name__)


def landmark_frame(checkpoint: str | Path) -> FaceFrame | None:
    """The frame a landmark checkpoint learned (from its saved DataModule settings), or None for
    a file without them (``LandmarkNet.save``)."""
    contents = read_checkpoint(checkpoint)
    return checkpoint_frame(contents)


def check_landmark_frame(
    checkpoint: str | Path | None, data: FaceFrame | pl.LightningDataModule | None, user: str
) -> None:
    """``ValueError`` naming both frames when the landmark network of ``checkpoint`` learned faces
    framed otherwise than ``data``'s (a frame, or a ``FaceDataModule``); ``user`` names who loads it.

    Nothing to check without a checkpoint ("random" included) or a known data frame; a checkpoint
    that saved no frame is used with a warning.
    """
    frame = data if isinstance(data, FaceFrame) else getattr(data, "frame", None)
    if checkpoint is None or str(checkpoint) == "random" or not isinstance(frame, FaceFrame):
        return
    learned = landmark_frame(checkpoint)
    if learned is None:
        log.warning("landmark checkpoint %s saved no data frame: cannot check it", checkpoint)
    elif learned != frame:
        raise ValueError(
            f"{user} works on faces of {frame}, but the landmark network {str(checkpoint)!r} "
            f"learned faces of {learned}: use a landmark network trained on the same frame"
        )


class LandmarkModule(DeclaredModule):
    kind = "landmarks"
    display_name = "landmark network"
    former_names = ("LitLandmarks",)
    architecture = ("widths", "heatmap_stride")
    optimizer_settings = ("lr", "weight_decay")
    checkpoint_marker = CHECKPOINT_KEY

    def __init__(
        self,
        widths: list[int] = [16, 32, 48, 64, 96],  # noqa: B006 (jsonargparse needs a literal default)
        heatmap_stride: int = 2,
        sigma: float = 1.0,
        heatmap_weight: float = 1.0,
        coord_weight: float = 0.1,
        masked_fraction: float = 0.5,
        center_side: float = 0.5,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        """
        Args:
            widths: ``LandmarkNet`` channels per encoder level.
            heatmap_stride: input pixels per heatmap cell.
            sigma: std of the target Gaussians, heatmap cells.
            heatmap_weight: weight of the per-pixel logistic loss on the maps.
            coord_weight: weight of the L1 loss on soft-argmax coordinates, per input pixel.
            masked_fraction: fraction of training faces given to the network with their
                ``mask`` hole filled with zeros.
            center_side: side of the centre square (fraction of the image) for ``val/nme_center``.
            lr: peak AdamW learning rate of the one-cycle schedule.
            weight_decay: AdamW weight decay.
        """
        super().__init__()
        self.save_hyperparameters()
        self.net = LandmarkNet(widths=widths, heatmap_stride=heatmap_stride)
        self.center_mask = MaskSpec(kind="center", side=center_side)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(image)

    @staticmethod
    def _targets(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        if LANDMARKS not in batch:
            raise KeyError(
                "the batch has no 'landmarks': annotate the dataset first "
                "(`faceinpaint landmarks annotate --config <this config>`)"
            )
        landmarks = batch[LANDMARKS].to(batch[IMAGE].dtype)  # (B, 68, 2)
        valid = torch.isfinite(landmarks).flatten(1).all(dim=1)  # (B,)
        if LANDMARKS_FOUND in batch:
            valid = valid & batch[LANDMARKS_FOUND]
        return landmarks, valid

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        image, landmarks, valid = batch[IMAGE], *self._targets(batch)
        damaged = torch.rand(image.shape[0], device=image.device) < self.hparams.masked_fraction
        inputs = torch.where(damaged[:, None, None, None], fill_hole(image, batch[MASK]), image)
        logits, coords = self.net(inputs)  # (B,68,h,w), (B,68,2)
        size = tuple(image.shape[-2:])
        target_maps = render_heatmaps(landmarks, size, tuple(logits.shape[-2:]), self.hparams.sigma)
        weight = valid.to(image.dtype)  # (B,)
        count = weight.sum().clamp(min=1.0)
        heatmap = (
            F.binary_cross_entropy_with_logits(logits, target_maps, reduction="none").mean(
                dim=(1, 2, 3)
            )
            * weight
        ).sum() / count
        safe_landmarks = torch.where(valid[:, None, None], landmarks, coords.detach())
        coord = ((coords - safe_landmarks).abs().mean(dim=(1, 2)) * weight).sum() / count
        loss = self.hparams.heatmap_weight * heatmap + self.hparams.coord_weight * coord
        batch_size = image.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("train/heatmap", heatmap, batch_size=batch_size)
        self.log("train/coord_px", coord, batch_size=batch_size)
        return loss

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        image, landmarks, valid = batch[IMAGE], *self._targets(batch)
        count = int(valid.sum())
        if count == 0:
            return
        center = make_masks(self.center_mask, batch[INDEX], tuple(image.shape[-2:]))
        inputs = {
            "nme": image,
            "nme_center": fill_hole(image, center),
            "nme_mask": fill_hole(image, batch[MASK]),
        }
        for name, x in inputs.items():
            _, coords = self.net(x)
            nme = landmark_nme(coords[valid], landmarks[valid]).mean()
            self.log(f"{stage}/{name}", nme, prog_bar=name == "nme", batch_size=count)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams.lr,
            total_steps=int(self.trainer.estimated_stepping_batches),
            pct_start=0.15,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The network alone, so that LandmarkNet.from_checkpoint needs no Lightning.
        checkpoint[CHECKPOINT_KEY] = self.net.checkpoint_entry()


def __getattr__(name: str) -> type:
    """A former class name of this module (its class's ``former_names``)."""
    return former_class(__name__, name)
