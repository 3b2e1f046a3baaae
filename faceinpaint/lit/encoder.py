"""Encoder-initialised latent search: train an encoder E into a trained DCGAN's latent space.

E (``faceinpaint.models.latent_encoder.LatentEncoder``) maps a damaged face and its mask to a
latent of the frozen generator G named by ``dcgan_checkpoint``; the latent search then starts
from E(y) instead of random draws and refines with the thesis's losses. E is trained after the
DCGAN, in the spirit of in-domain GAN inversion (Zhu et al. 2020), on two kinds of pairs:

- G's own samples ``x = G(z)``, z from the training prior, damaged by the batch's masks: the
  ``latent`` term ``|E(x, M) - z|^2`` (mean) and the ``sample_image`` term ``|G(E(x, M)) - x|``
  (mean L1 over all pixels);
- the real faces of the batch: ``real_context`` (mean L1 of ``G(E(y, M))`` against the face on
  the known pixels) and ``real_hole`` (the same on the hole pixels; the training faces are
  whole, so E also learns what the hole held).

G stays frozen in eval mode (BatchNorm from running statistics), as in the search. A weight of
0 means the term is never computed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from faceinpaint.batch import IMAGE, MASK
from faceinpaint.lit.loading import ENCODER_CONFIG_KEY, load_generator
from faceinpaint.lit.method import DeclaredModule
from faceinpaint.models.dcgan import sample_latent
from faceinpaint.models.latent_encoder import LatentEncoder


class LatentEncoderModule(DeclaredModule):
    """Trains E for the frozen generator of ``dcgan_checkpoint``."""

    kind = "encoder"
    display_name = "latent encoder"
    checkpoint_marker = ENCODER_CONFIG_KEY
    export_class = f"{LatentEncoder.__module__}.{LatentEncoder.__qualname__}"
    export_prefixes = ("encoder.",)  # E alone: G is the DCGAN's, loaded from its own file

    @classmethod
    def exported(cls, checkpoint: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Tensor]]:
        """E's weights and constructor arguments: a ``LatentEncoder`` file."""
        state = {
            name.removeprefix("encoder."): value
            for name, value in checkpoint["state_dict"].items()
            if name.startswith("encoder.")
        }
        return cls.export_class, dict(checkpoint[ENCODER_CONFIG_KEY]), state

    def __init__(
        self,
        dcgan_checkpoint: str,
        base_channels: int = 32,
        max_channels: int = 256,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        latent_weight: float = 1.0,
        sample_image_weight: float = 1.0,
        real_context_weight: float = 1.0,
        real_hole_weight: float = 1.0,
    ) -> None:
        """
        Args:
            dcgan_checkpoint: the trained DCGAN (``.ckpt`` or ``.safetensors``) whose G E inverts.
            base_channels: E's first width.
            max_channels: cap on E's widths.
            lr: Adam learning rate.
            betas: Adam's moment decays.
            latent_weight: weight of ``|E(G(z), M) - z|^2`` on G's samples.
            sample_image_weight: weight of the L1 of ``G(E(G(z), M))`` against ``G(z)``.
            real_context_weight: weight of the L1 of ``G(E(y, M))`` on a real face's known pixels.
            real_hole_weight: the same on its hole pixels.
        """
        super().__init__()
        self.save_hyperparameters()
        self.generator, self.latent_prior = load_generator(dcgan_checkpoint)
        self.encoder_config: dict[str, Any] = {
            "latent_dim": self.generator.latent_dim,
            "image_size": self.generator.image_size,
            "base_channels": base_channels,
            "max_channels": max_channels,
            "bounded": self.latent_prior == "uniform",
        }
        self.encoder = LatentEncoder(**self.encoder_config)

    def train(self, mode: bool = True) -> LatentEncoderModule:
        super().train(mode)
        self.generator.eval()  # frozen: BatchNorm from running statistics, as in the search
        return self

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.encoder.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas)
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[ENCODER_CONFIG_KEY] = dict(self.encoder_config)

    def losses(
        self, batch: dict[str, Tensor], latent: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(total, parts)`` on a batch: G's samples damaged by the batch's masks, and the
        batch's real faces. ``latent`` (B, latent_dim) are the samples' z; None draws them
        from the prior."""
        hp = self.hparams
        image, mask = batch[IMAGE], batch[MASK]  # (B,3,S,S), (B,1,S,S)
        hole = mask.to(image.dtype)
        parts: dict[str, Tensor] = {}
        weights: dict[str, float] = {}
        if hp.latent_weight > 0 or hp.sample_image_weight > 0:
            if latent is None:
                latent = sample_latent(
                    self.latent_prior,
                    image.shape[0],
                    self.generator.latent_dim,
                    device=image.device,
                )
            with torch.no_grad():
                sample = self.generator(latent)  # (B,3,S,S)
            estimate = self.encoder(sample, hole)  # (B, latent_dim)
            if hp.latent_weight > 0:
                parts["latent"] = (estimate - latent).pow(2).mean()
                weights["latent"] = hp.latent_weight
            if hp.sample_image_weight > 0:
                parts["sample_image"] = (self.generator(estimate) - sample).abs().mean()
                weights["sample_image"] = hp.sample_image_weight
        if hp.real_context_weight > 0 or hp.real_hole_weight > 0:
            error = (self.generator(self.encoder(image, hole)) - image).abs()  # (B,3,S,S)
            for name, region, weight in (
                ("real_context", 1.0 - hole, hp.real_context_weight),
                ("real_hole", hole, hp.real_hole_weight),
            ):
                if weight > 0:
                    parts[name] = (error * region).sum() / (3 * region.sum()).clamp_min(1.0)
                    weights[name] = weight
        if not parts:
            raise ValueError("every loss weight of the latent encoder is 0; nothing to train")
        total = sum(weights[name] * value for name, value in parts.items())
        return total, parts

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        total, parts = self.losses(batch)
        size = batch[IMAGE].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in parts.items()}, batch_size=size)
        self.log("train/total", total.detach(), prog_bar=True, batch_size=size)
        return total

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        total, parts = self.losses(batch)
        size = batch[IMAGE].shape[0]
        self.log_dict({f"val/{k}": v for k, v in parts.items()}, batch_size=size)
        self.log("val/total", total, batch_size=size)
