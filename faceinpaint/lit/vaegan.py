"""Method 1: the feed-forward VAE-GAN (IJIES 2020) trained under the three-stage curriculum.

The update schedule is WGAN's Algorithm 1 (Arjovsky et al. 2017), which the paper's 5:1
critic schedule cites: every critic update gets its own real batch and fakes from the current
generator. In stage 1 (no critic) every training batch is one **generator update** (Adam). From
stage 2 on, every training batch is one **critic update** (RMSProp, both critics in one
optimizer, then ``clip_mode`` clipping) on that batch's real images and the generator's detached,
composited result, and every ``n_critic``-th batch is also a generator update, on the same
batch, after its critic update. The curriculum clock (``generator_updates``) counts generator
updates, so the paper's "step 15,000" is the 15,000th generator update whatever the batch count.

Batches per generator update: 1 in stage 1, ``n_critic`` later. Lightning's counters follow the
batches, not the clock: ``val_check_interval`` and ``log_every_n_steps`` count training batches,
and ``trainer.global_step`` counts optimizer steps (1 per batch in stage 1, 1 + 1/n_critic per
batch later). Configs therefore leave ``max_steps`` at -1 (training stops once
``generator_updates`` reaches the last stage boundary) and choose ``val_check_interval`` in
batches; both counters are logged (``train/generator_updates``, ``train/critic_updates``).

Precision: under ``precision: bf16-mixed`` the networks run in bf16, the VGG feature extractor
included; the latent mean and log-variance and the sampling of z and every loss stay in float32
(features and critic scores are upcast before their losses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from faceinpaint.batch import IMAGE, INDEX, MASK, HoleFill, composite, fill_hole
from faceinpaint.lit.curriculum import PAPER_BOUNDARIES, check_boundaries, stage_at
from faceinpaint.lit.images import figure_grid, log_image
from faceinpaint.lit.landmarks import check_landmark_frame
from faceinpaint.lit.method import InpaintingModule, former_class
from faceinpaint.lit.progress import curriculum_progress_bar
from faceinpaint.losses.landmark import LandmarkLoss
from faceinpaint.losses.vaegan import (
    CriticSettings,
    LossWeights,
    VAEGANObjective,
    feature_layer_weights,
)
from faceinpaint.losses.vgg import DFC_VAE_LAYERS, VGGFeatures, VGGVariant
from faceinpaint.metrics import DefaultMetrics
from faceinpaint.models.blocks import Norm
from faceinpaint.models.vaegan import Critic, InpaintingVAE, hole_windows
from faceinpaint.ops.poisson import paste_or_blend
from faceinpaint.settings import as_group, fold_group

CHECKPOINT_KEY = "vaegan_curriculum"
# The frozen networks that score training, built from their own files (landmark_checkpoint,
# vgg_weights): not training state. Checkpoints leave them out, so a resume that adds or drops
# one (stage 3 scheduled or not, weights.landmark or weights.feat 0) loads; the copies that former
# checkpoints hold are ignored.
FROZEN_PARTS = ("landmark_loss.", "vgg.")
# The flat constructor arguments of checkpoints written before the groups -> (group, field).
FORMER_WEIGHT_NAMES = {
    "kl_weight": "kl",
    "feat_weight": "feat",
    "local_adv_weight": "local_adv",
    "global_adv_weight": "global_adv",
    "landmark_weight": "landmark",
    "l1_weight": "l1",
}
FORMER_CRITIC_NAMES = {
    "n_critic": "n_critic",
    "clip_value": "clip_value",
    "clip_mode": "clip_mode",
    "gp_weight": "gp_weight",
    "critic_noise_std": "noise_std",
    "label_scale": "label_scale",
}


def clip_parameters_(module: nn.Module, bound: float) -> None:
    """Clamp every parameter of ``module`` to ``[-bound, bound]`` in place (WGAN clipping)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.clamp_(-bound, bound)


def curriculum_rule(old: Any, new: Any, checkpoint: Mapping[str, Any]) -> str | None:
    """Stage boundaries may move on resume only where the checkpoint has not reached them yet,
    and none below the generator update it reached."""
    done = int(checkpoint.get(CHECKPOINT_KEY, {}).get("generator_updates", 0))
    for number, (before, after) in enumerate(zip(old[:2], new[:2], strict=True), start=1):
        if after == before:
            continue
        if before < done:
            return (
                f"the checkpoint is at generator update {done}, past the end of stage {number} "
                f"({before}); only boundaries it has not reached may move"
            )
        if after < done:
            return (
                f"the checkpoint is at generator update {done}, in stage {number}: stage "
                f"{number} can end at update {done} or later, not {after}"
            )
    if new[2] < done:
        return (
            f"the checkpoint is at generator update {done}: training can end at update {done} "
            f"or later, not {new[2]}"
        )
    return None


class VAEGANModule(InpaintingModule):
    """VAE generator + global and local WGAN critics, feature / KL / landmark losses (eq. 10)."""

    kind = "vaegan"
    display_name = "VAE-GAN"
    former_names = ("VAEGANInpainting",)
    architecture = (
        "image_size",
        "latent_dim",
        "base_channels",
        "max_channels",
        "num_layers",
        "norm",
        "residual_second_norm",
        "critic_base_channels",
        "critic_max_channels",
        "critic_norm",
        "local_size",
    )
    optimizer_settings = ("generator_lr", "generator_betas", "critic_lr")
    resume_rules = {"stage_boundaries": curriculum_rule}
    checkpoint_marker = CHECKPOINT_KEY
    # the generator alone: the critics judge training only; the VGG and landmark network that
    # score training are not built for inference (no download, no landmark file needed)
    export_prefixes = ("generator.",)
    export_overrides = {"weights.feat": 0.0, "weights.landmark": 0.0, "landmark_checkpoint": None}
    inference_settings = ("poisson_iterations",)

    @classmethod
    def current_hparams(cls, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """``weights`` a :class:`LossWeights` and ``critic`` a :class:`CriticSettings`, from the
        former flat names (``kl_weight`` ..., ``n_critic`` ...: :data:`FORMER_WEIGHT_NAMES`,
        :data:`FORMER_CRITIC_NAMES`), mappings (JSON metadata) or dotted ``weights.<field>`` /
        ``critic.<field>`` entries."""
        hparams = fold_group(hparams, "weights", LossWeights, FORMER_WEIGHT_NAMES)
        return fold_group(hparams, "critic", CriticSettings, FORMER_CRITIC_NAMES)

    def __init__(
        self,
        image_size: int = 128,
        latent_dim: int = 512,
        base_channels: int = 64,
        max_channels: int = 512,
        num_layers: int = 5,
        norm: Norm = "batch",
        residual_second_norm: bool = True,
        critic_base_channels: int = 64,
        critic_max_channels: int = 512,
        critic_norm: Norm = "batch",
        local_size: int = 64,
        weights: LossWeights = LossWeights(),
        feature_layers: Sequence[str] = DFC_VAE_LAYERS,
        feature_weights: Sequence[float] | None = None,
        vgg_weights: str = "imagenet",
        vgg_variant: VGGVariant = "vgg19",
        landmark_checkpoint: str | None = None,
        stage_boundaries: Sequence[int] = PAPER_BOUNDARIES,
        critic: CriticSettings = CriticSettings(),
        generator_lr: float = 1e-4,
        generator_betas: tuple[float, float] = (0.9, 0.999),
        critic_lr: float = 5e-4,
        hole_fill: HoleFill = "noise",
        channels_last: bool = False,
        image_log_every_n_steps: int = 500,
        grid_samples: int = 8,
        eval_seed: int = 0,
        poisson_iterations: int = 0,
    ) -> None:
        """
        Args:
            image_size: side of the square training images in pixels (128 in the paper).
            latent_dim: size of z.
            base_channels: width of the generator's outermost conv layers.
            max_channels: cap on the generator's widths.
            num_layers: generator down-/up-sampling stages (bottleneck image_size / 2**num_layers).
            norm: normalisation in the generator.
            residual_second_norm: the generator's residual blocks normalise after their second
                convolution as well as their first. The paper does not say; True is ours, False
                drops that norm (the critics keep theirs).
            critic_base_channels: width of the critics' first conv layer.
            critic_max_channels: cap on the critics' widths.
            critic_norm: normalisation in the critics ('batch' as in the paper).
            local_size: side of the local critic's window around the hole, pixels.
            weights: the lambdas of eq. 10 (``LossWeights``): kl (lambda_1, KL divergence),
                feat (lambda_2, VGG feature reconstruction), local_adv and global_adv (lambda_3
                and lambda_4, the critics' adversarial losses, stage >= 2), landmark (lambda_5,
                stage 3), l1 (pixel L1 between output and original, 0 in the paper).
            feature_layers: VGG layers of the feature loss, by name: ReLUs (relu1_1 ...) or
                convolutions before their ReLU (conv1_1 ...). The paper's "the three first
                layers": relu1_1, relu2_1, relu3_1 (DFC-VAE's choice, our default); read
                literally, conv1_1, conv1_2, conv2_1.
            feature_weights: per-layer weights; None = the paper's 100 / C_l^2.
            vgg_weights: "imagenet" (torchvision download), a state-dict path, or "random"
                (tests and smoke runs only).
            vgg_variant: the paper's "VGG-Net": 'vgg19' (DFC-VAE's, our default) or 'vgg16'.
            landmark_checkpoint: LandmarkNet checkpoint for the landmark loss; required when
                stage 3 is scheduled with ``weights.landmark`` > 0; "random" for tests.
            stage_boundaries: generator updates ending stage 1, stage 2 and training.
            critic: how the critics train (``CriticSettings``): n_critic (critic updates per
                generator update in stages 2 and 3, each on its own training batch),
                clip_value and clip_mode (clipping of the critics' weights or gradients),
                gp_weight (a WGAN-GP penalty; needs critic_norm 'instance' or 'none'),
                noise_std (noise on every critic input) and label_scale (of both WGAN losses).
            generator_lr: Adam learning rate of the generator.
            generator_betas: Adam betas of the generator (the paper gives none: torch defaults).
            critic_lr: RMSProp learning rate of the critics.
            hole_fill: what fills the hole in the network input ('noise' in the paper).
            channels_last: convert the networks and inputs to channels_last memory format.
            image_log_every_n_steps: generator updates between training image grids (0 = never).
            grid_samples: samples per image grid.
            eval_seed: seed of the hole noise in validation / test / predict (reproducible).
            poisson_iterations: outside training, Poisson-blend the output into the known
                pixels with this many conjugate-gradient iterations instead of pasting it
                (0, the paper: pasted). Training losses never see it.
        """
        super().__init__()
        # mappings where a checkpoint's YAML gave them
        weights, critic = as_group(LossWeights, weights), as_group(CriticSettings, critic)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.boundaries = check_boundaries(stage_boundaries)
        # the groups as dataclasses (under LightningCLI, hparams hold the config's mappings)
        self.weights = weights
        self.critic = critic
        if poisson_iterations < 0:
            raise ValueError(f"poisson_iterations must be >= 0, got {poisson_iterations}")
        if critic.gp_weight > 0 and critic_norm == "batch":
            raise ValueError(
                "a gradient penalty needs per-sample critic outputs: set critic_norm to "
                "'instance' or 'none' (got 'batch') or critic.gp_weight: 0"
            )
        if image_size < 1 or local_size < 1:
            raise ValueError(
                f"image_size and local_size must be positive, got {image_size}, {local_size}"
            )
        if local_size > image_size:
            raise ValueError(f"local_size {local_size} exceeds image_size {image_size}")
        self.generator = InpaintingVAE(
            image_size,
            3,
            latent_dim,
            base_channels,
            max_channels,
            num_layers,
            norm,
            residual_second_norm=residual_second_norm,
        )
        critic_sizes = dict(
            in_channels=3,
            base_channels=critic_base_channels,
            max_channels=critic_max_channels,
            norm=critic_norm,
        )
        self.global_critic = Critic(image_size, **critic_sizes)
        self.local_critic = Critic(local_size, **critic_sizes)
        self.vgg = (
            VGGFeatures(feature_layers, vgg_weights, vgg_variant) if weights.feat > 0 else None
        )
        if self.vgg is not None:
            self.feature_weights = list(
                feature_weights
                if feature_weights is not None
                else feature_layer_weights(self.vgg.channels)
            )
            if len(self.feature_weights) != len(self.vgg.layers):
                raise ValueError(
                    f"feature_weights needs one value per layer {self.vgg.layers}, "
                    f"got {self.feature_weights}"
                )
        stage_3_scheduled = self.boundaries[1] < self.boundaries[2]
        self.landmark_loss: LandmarkLoss | None = None
        if stage_3_scheduled and weights.landmark > 0:
            if landmark_checkpoint is None:
                raise ValueError(
                    f"stage 3 starts at generator step {self.boundaries[1]} with "
                    f"weights.landmark={weights.landmark} but landmark_checkpoint is None: set "
                    "landmark_checkpoint to a trained LandmarkNet checkpoint, or weights.landmark: 0"
                )
            # the paper's pixel-wise logistic loss between the landmark maps of original and result
            self.landmark_loss = LandmarkLoss(landmark_checkpoint, kind="logistic")
        self.objective = VAEGANObjective(
            self.weights,
            local_size,
            critic,
            self.vgg,
            getattr(self, "feature_weights", ()),
            self.landmark_loss,
        )
        self.val_metrics = DefaultMetrics()
        self.test_metrics = DefaultMetrics()
        self.generator_updates = 0  # the curriculum clock, saved in checkpoints
        self.critic_updates = 0  # saved too: a resumed run continues its n_critic cycle
        self.generator_log: dict[str, Tensor] = {}  # train/ terms of the latest generator update

    @property
    def curriculum_stage(self) -> int:
        """Curriculum stage (1, 2 or 3) of the next generator update."""
        return stage_at(self.generator_updates, self.boundaries)

    # ----------------------------------------------------------------- setup and checkpoints
    def setup(self, stage: str) -> None:
        if self.landmark_loss is not None:
            check_landmark_frame(
                self.hparams.landmark_checkpoint, self.trainer.datamodule, "the VAE-GAN"
            )
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        generator_opt = torch.optim.Adam(
            self.generator.parameters(),
            lr=self.hparams.generator_lr,
            betas=tuple(self.hparams.generator_betas),
        )
        critic_opt = torch.optim.RMSprop(
            [
                {"params": self.global_critic.parameters()},
                {"params": self.local_critic.parameters()},
            ],
            lr=self.hparams.critic_lr,
        )
        return [generator_opt, critic_opt]

    def configure_callbacks(self) -> list[pl.Callback]:
        """Lightning's tqdm bar becomes the curriculum's (stage, generator updates of the total)."""
        return curriculum_progress_bar(self.trainer)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "generator_updates": self.generator_updates,
            "critic_updates": self.critic_updates,
            "stage": self.curriculum_stage,
            "boundaries": list(self.boundaries),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if CHECKPOINT_KEY not in checkpoint:
            raise KeyError(
                f"checkpoint has no {CHECKPOINT_KEY!r} entry (keys: {sorted(checkpoint)}); "
                "expected one written by VAEGANModule"
            )
        state = checkpoint[CHECKPOINT_KEY]
        self.generator_updates = int(state["generator_updates"])
        # checkpoints of the former schedule (all critic updates inside the generator's batch)
        # never stop mid-cycle: a fresh cycle resumes them
        self.critic_updates = int(state.get("critic_updates", 0))

    def state_dict(
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> dict[str, Any]:
        """The module's state less the frozen scoring networks (``FROZEN_PARTS``)."""
        state = super().state_dict(
            *args, destination=destination, prefix=prefix, keep_vars=keep_vars
        )
        frozen = tuple(prefix + part for part in FROZEN_PARTS)
        for key in [k for k in state if k.startswith(frozen)]:
            del state[key]
        return state

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load the trained networks; the frozen ones keep what their own files gave them,
        whether ``state_dict`` holds them (a former checkpoint) or not."""
        trained = {k: v for k, v in state_dict.items() if not k.startswith(FROZEN_PARTS)}
        result = super().load_state_dict(trained, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith(FROZEN_PARTS)]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"the checkpoint does not fit {type(self).__name__}: missing keys {missing[:5]}, "
                f"unexpected keys {result.unexpected_keys[:5]}"
            )
        return result._replace(missing_keys=missing)

    # ----------------------------------------------------------------- training
    def _prepare(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        image, mask = batch[IMAGE], batch[MASK]
        if self.hparams.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            mask = mask.contiguous(memory_format=torch.channels_last)
        return image, mask

    def generator_loss(
        self,
        curriculum_stage: int,
        image: Tensor,
        output: Tensor,
        result: Tensor,
        mu: Tensor,
        logvar: Tensor,
        windows: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 10 of ``curriculum_stage`` (:meth:`VAEGANObjective.generator`); ``(total, parts)``."""
        critics = (self.global_critic, self.local_critic)
        return self.objective.generator(
            curriculum_stage, image, output, result, mu, logvar, windows, *critics
        )

    def critic_losses(
        self, image: Tensor, fake: Tensor, windows: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The critics' objective (:meth:`VAEGANObjective.critics`); ``(total, parts)``."""
        return self.objective.critics(image, fake, windows, self.global_critic, self.local_critic)

    def critics_train(self, curriculum_stage: int) -> bool:
        """Whether ``curriculum_stage`` has critic updates: stage >= 2 and an adversarial weight > 0."""
        return curriculum_stage >= 2 and (self.weights.local_adv > 0 or self.weights.global_adv > 0)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        image, mask = self._prepare(batch)
        curriculum_stage = self.curriculum_stage
        generator_opt, critic_opt = self.optimizers()
        network_input = fill_hole(image, mask, self.hparams.hole_fill)
        windows = hole_windows(mask, self.hparams.local_size)  # (B, 2)
        critic_step = self.critics_train(curriculum_stage)
        generator_step = not critic_step or (self.critic_updates + 1) % self.critic.n_critic == 0

        # one forward of the current generator: the critic's fakes, and on a generator step the
        # graph of its update (the critic step below touches neither its weights nor the graph)
        with torch.set_grad_enabled(generator_step):
            output, mu, logvar = self.generator(network_input)  # (B,3,S,S), (B,Z), (B,Z)
        result = composite(output, image, mask)
        logged: dict[str, Tensor | float] = {}

        if critic_step:
            self.toggle_optimizer(critic_opt)
            critic_opt.zero_grad(set_to_none=True)
            critic_total, critic_parts = self.critic_losses(image, result.detach(), windows)
            self.manual_backward(critic_total)
            clip_value, clip_mode = self.critic.clip_value, self.critic.clip_mode
            if clip_value is not None and clip_mode == "gradients":
                self.clip_gradients(critic_opt, clip_value, gradient_clip_algorithm="value")
            critic_opt.step()
            if clip_value is not None and clip_mode == "weights":
                clip_parameters_(self.global_critic, clip_value)
                clip_parameters_(self.local_critic, clip_value)
            self.untoggle_optimizer(critic_opt)
            self.critic_updates += 1
            logged.update({f"train/{k}": v.detach() for k, v in critic_parts.items()})

        if generator_step:
            self.toggle_optimizer(generator_opt)
            generator_opt.zero_grad(set_to_none=True)
            total, parts = self.generator_loss(
                curriculum_stage, image, output, result, mu, logvar, windows
            )
            self.manual_backward(total)
            generator_opt.step()
            self.untoggle_optimizer(generator_opt)
            self.generator_log = {f"train/{k}": v.detach() for k, v in parts.items()}
            self.generator_log["train/generator_total"] = total.detach()
            every = self.hparams.image_log_every_n_steps
            if every > 0 and self.generator_updates % every == 0:
                self.log_grid("train/images", image, network_input, output, result)
            self.generator_updates += 1

        # every logged batch shows the latest generator update's terms, whichever batch it was
        logged.update(self.generator_log)
        logged["train/stage"] = float(curriculum_stage)
        logged["train/generator_updates"] = float(self.generator_updates)
        logged["train/critic_updates"] = float(self.critic_updates)
        self.log_dict(logged, on_step=True, on_epoch=False, batch_size=image.shape[0])

    def on_train_start(self) -> None:
        # a run resumed at the end of its curriculum trains no batch, not one more critic update
        if self.generator_updates >= self.boundaries[2]:
            self.trainer.should_stop = True

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.generator_updates >= self.boundaries[2]:
            self.trainer.should_stop = True

    # ----------------------------------------------------------------- evaluation
    def network_parts(
        self,
        image: Tensor,
        mask: Tensor,
        generator: torch.Generator | None = None,
        index: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(network input, raw output, result)``, each (B,3,S,S) in [-1, 1]; the result is the
        output pasted into the hole, or Poisson-blended with ``poisson_iterations`` > 0.

        With ``index``, the hole noise of each sample is seeded by ``(eval_seed, index)``: the
        same image gets the same input alone, in any batch and on any number of ranks.
        """
        network_input = fill_hole(
            image, mask, self.hparams.hole_fill, generator, index, self.hparams.eval_seed
        )
        output, _, _ = self.generator(network_input)
        result = paste_or_blend(output, image, mask, self.hparams.poisson_iterations)
        return network_input, output, result

    @torch.no_grad()
    def inpaint(self, damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        """(B,3,S,S) composited results; the hole noise seeded per sample by ``(eval_seed, index)``."""
        return self.network_parts(damaged, mask, index=index)[2]

    def inpaint_parts(self, damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(raw output, result)`` of :meth:`network_parts`."""
        _, output, result = self.network_parts(damaged, mask, index=index)
        return output, result

    def reconstruct(self, image: Tensor, index: Tensor) -> Tensor:
        """The output for the whole original (no hole): how well the encoder-decoder can
        reproduce the hole at all."""
        hole = torch.zeros_like(image[:, :1])
        return self.network_parts(image, hole, index=index)[1]

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, prefix: str) -> None:
        image, mask = self._prepare(batch)
        network_input, output, result = self.network_parts(image, mask, index=batch[INDEX])
        metrics = self.val_metrics if prefix == "val" else self.test_metrics
        metrics.update(result, image, mask, raw=output)
        if batch_idx == 0:
            self.log_grid(f"{prefix}/images", image, network_input, output, result)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _log_metrics(self, metrics: DefaultMetrics, prefix: str) -> None:
        values = metrics.compute()
        self.log_dict({f"{prefix}/{name}": value for name, value in values.items()})
        self.log(f"{prefix}/stage", float(self.curriculum_stage))
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """(B,3,S,S) composited results in [-1, 1]."""
        image, mask = self._prepare(batch)
        return self.network_parts(image, mask, index=batch[INDEX])[2]

    # ----------------------------------------------------------------- image grids
    def log_grid(
        self, tag: str, image: Tensor, network_input: Tensor, output: Tensor, result: Tensor
    ) -> None:
        """The paper's figure layout: rows original / masked / result / mixed, one column per
        sample; sent to wandb or TensorBoard, or saved as a PNG beside a CSV log."""
        if not self.loggers:
            return
        grid = figure_grid([image, network_input, output, result], self.hparams.grid_samples)
        step = self.generator_updates
        log_image(self._trainer, tag, grid, step, caption=f"generator step {step}")


def __getattr__(name: str) -> type:
    """A former class name of this module (its class's ``former_names``)."""
    return former_class(__name__, name)
