"""Method 3: the Context Encoder (Pathak et al. 2016), a feed-forward encoder-decoder trained
with the masked L2 reconstruction of the hole and an adversarial term (lambdas 0.999 / 0.001).

Each training batch is one discriminator update (DCGAN's BCE on the real faces and the
generator's detached, composited results; skipped when ``adv_weight`` is 0) and then one
generator update (:func:`faceinpaint.losses.context_encoder.context_encoder_loss`), both Adam
with the paper's lr 2e-4 and betas (0.5, 0.999), manual optimization. ``trainer.global_step``
counts optimizer steps: 2 per batch (1 with ``adv_weight`` 0), so ``max_steps`` and
``every_n_train_steps`` of the configs are twice their batches.

Inference is deterministic: the hole is zeroed (no noise) and the network runs in eval mode.
The output is pasted into the hole, as the paper does, or Poisson-blended
(``poisson_iterations``, an inference setting that training never sees).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from faceinpaint.batch import IMAGE, INDEX, MASK, composite, fill_hole
from faceinpaint.lit.images import figure_grid, log_image
from faceinpaint.lit.method import InpaintingModule
from faceinpaint.losses.context_encoder import ContextLossWeights, context_encoder_loss
from faceinpaint.losses.dcgan import discriminator_loss
from faceinpaint.metrics import DefaultMetrics
from faceinpaint.models.context_encoder import ContextEncoderGenerator
from faceinpaint.models.dcgan import Discriminator
from faceinpaint.ops.poisson import paste_or_blend


class ContextEncoderModule(InpaintingModule):
    """Context Encoder generator + DCGAN discriminator on the whole composited image."""

    kind: ClassVar[str] = "ce"
    display_name: ClassVar[str] = "Context Encoder"
    architecture: ClassVar[tuple[str, ...]] = (
        "image_size",
        "base_channels",
        "max_channels",
        "bottleneck",
        "discriminator_channels",
    )
    optimizer_settings: ClassVar[tuple[str, ...]] = ("lr", "betas")
    export_prefixes: ClassVar[tuple[str, ...]] = ("generator.",)  # D judges training only
    inference_settings: ClassVar[tuple[str, ...]] = ("poisson_iterations",)

    @classmethod
    def recognizes(cls, checkpoint: Mapping[str, Any]) -> bool:
        prefixes = {key.split(".", 1)[0] for key in checkpoint.get("state_dict") or {}}
        hparams = checkpoint.get("hyper_parameters") or {}
        return {"generator", "discriminator"} <= prefixes and "bottleneck" in hparams

    def __init__(
        self,
        image_size: int = 128,
        base_channels: int = 64,
        max_channels: int = 512,
        bottleneck: int = 4000,
        discriminator_channels: int = 64,
        rec_weight: float = 0.999,
        adv_weight: float = 0.001,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        image_log_every_n_steps: int = 500,
        grid_samples: int = 8,
        poisson_iterations: int = 0,
    ) -> None:
        """
        Args:
            image_size: side of the square images in pixels, a power of two >= 8.
            base_channels: width of the generator's outermost layers.
            max_channels: cap on the generator's widths (64 ... 512 in the paper).
            bottleneck: size of the generator's code (4000 in the paper).
            discriminator_channels: width of the discriminator's first layer (doubling inward).
            rec_weight: lambda_rec, masked L2 reconstruction of the hole (0.999).
            adv_weight: lambda_adv, the adversarial term (0.001); 0 = no discriminator updates.
            lr: Adam learning rate of both networks (2e-4).
            betas: Adam's moment decays of both networks ((0.5, 0.999)).
            image_log_every_n_steps: training batches between image grids (0 = never).
            grid_samples: faces per image grid.
            poisson_iterations: outside training, Poisson-blend the output into the known
                pixels with this many conjugate-gradient iterations instead of pasting it
                (0, the paper: pasted).
        """
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        if poisson_iterations < 0:
            raise ValueError(f"poisson_iterations must be >= 0, got {poisson_iterations}")
        self.weights = ContextLossWeights(rec=rec_weight, adv=adv_weight)
        self.generator = ContextEncoderGenerator(
            image_size, base_channels, max_channels, bottleneck
        )
        self.discriminator = Discriminator(discriminator_channels, image_size)
        self.val_metrics = DefaultMetrics()
        self.test_metrics = DefaultMetrics()

    # ----------------------------------------------------------------- the network
    def paint(self, damaged: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(network input, raw output)``: (B,3,S,S) ``damaged`` with its hole zeroed, and the
        generator's (B,3,S,S) image in [-1, 1] from that input and the (B,1,S,S) mask."""
        hole = mask.to(damaged.dtype)
        network_input = fill_hole(damaged, hole, "zeros")
        return network_input, self.generator(torch.cat([network_input, hole], dim=1))

    @torch.no_grad()
    def inpaint_parts(self, damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(raw output, result)``, each (B,3,S,S) in [-1, 1]: the output pasted into the hole,
        or Poisson-blended with ``poisson_iterations`` > 0; ``index`` is unused (nothing is
        random)."""
        output = self.paint(damaged, mask)[1]
        return output, paste_or_blend(output, damaged, mask, self.hparams.poisson_iterations)

    @torch.no_grad()
    def reconstruct(self, image: Tensor, index: Tensor) -> Tensor:
        """The output for the whole (B,3,S,S) ``image``, an all-zero mask (the eval oracle)."""
        return self.paint(image, torch.zeros_like(image[:, :1]))[1]

    # ----------------------------------------------------------------- training
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        betas = tuple(self.hparams.betas)
        generator_opt = torch.optim.Adam(
            self.generator.parameters(), lr=self.hparams.lr, betas=betas
        )
        discriminator_opt = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.hparams.lr, betas=betas
        )
        return [generator_opt, discriminator_opt]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        image, mask = batch[IMAGE], batch[MASK]  # (B,3,S,S), (B,1,S,S)
        generator_opt, discriminator_opt = self.optimizers()
        network_input, output = self.paint(image, mask)
        result = composite(output, image, mask)
        adversarial = self.weights.adv > 0
        logged: dict[str, Tensor] = {}

        if adversarial:
            self.toggle_optimizer(discriminator_opt)
            d_total, d_parts = discriminator_loss(
                self.discriminator(image), self.discriminator(result.detach())
            )
            discriminator_opt.zero_grad(set_to_none=True)
            self.manual_backward(d_total)
            discriminator_opt.step()
            self.untoggle_optimizer(discriminator_opt)
            logged["train/d_loss"] = d_total.detach()
            logged.update({f"train/{name}": value for name, value in d_parts.items()})

        self.toggle_optimizer(generator_opt)
        fake_logit = self.discriminator(result) if adversarial else None
        total, parts = context_encoder_loss(output, image, mask, fake_logit, self.weights)
        generator_opt.zero_grad(set_to_none=True)
        self.manual_backward(total)
        generator_opt.step()
        self.untoggle_optimizer(generator_opt)
        logged["train/g_loss"] = total.detach()
        logged.update({f"train/{name}": value.detach() for name, value in parts.items()})

        self.log_dict(logged, prog_bar=True, batch_size=image.shape[0])
        every = self.hparams.image_log_every_n_steps
        if every > 0 and self.trainer.fit_loop.epoch_loop.total_batch_idx % every == 0:
            self.log_grid("train/images", image, network_input, output, result)

    # ----------------------------------------------------------------- evaluation
    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, prefix: str) -> None:
        image, mask = batch[IMAGE], batch[MASK]
        network_input, output = self.paint(image, mask)
        result = paste_or_blend(output, image, mask, self.hparams.poisson_iterations)
        metrics = self.val_metrics if prefix == "val" else self.test_metrics
        metrics.update(result, image, mask, raw=output)
        if batch_idx == 0:
            self.log_grid(f"{prefix}/images", image, network_input, output, result)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _log_metrics(self, metrics: DefaultMetrics, prefix: str) -> None:
        self.log_dict({f"{prefix}/{name}": value for name, value in metrics.compute().items()})
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """(B,3,S,S) composited results in [-1, 1]."""
        return self.inpaint(batch[IMAGE], batch[MASK], batch[INDEX])

    # ----------------------------------------------------------------- image grids
    def log_grid(
        self, tag: str, image: Tensor, network_input: Tensor, output: Tensor, result: Tensor
    ) -> None:
        """Rows original / network input / raw output / result, one column per face; sent to
        wandb or TensorBoard, or saved as a PNG beside a CSV log."""
        if not self.loggers:
            return
        grid = figure_grid([image, network_input, output, result], self.hparams.grid_samples)
        step = self.global_step
        log_image(self._trainer, tag, grid, step, caption=f"step {step}")
