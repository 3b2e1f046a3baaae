"""Losses of the VAE-GAN inpainting method (IJIES 2020, eqs. 3-10).

All losses are computed in float32: inputs are upcast with ``.float()``, so callers under bf16
autocast get fp32 losses from bf16 activations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from faceinpaint.models.vaegan import crop_windows
from faceinpaint.settings import checkpoint_safe

# What ``CriticSettings.clip_value`` bounds: the critics' weights after their step (WGAN) or
# their gradients before it (the paper's sentence read literally).
ClipMode = Literal["weights", "gradients"]


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dims, averaged over the batch.

    The paper's printed eq. 3 has a typo; this is the standard closed form
    ``0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)`` (Kingma & Welling 2014, appendix B).
    ``mu``, ``logvar``: (B, latent).
    """
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


def feature_layer_weights(channels: Sequence[int]) -> list[float]:
    """The paper's weight 100 / C_l^2 for each layer with C_l channels."""
    return [100.0 / c**2 for c in channels]


def feature_reconstruction_loss(
    real_features: Sequence[Tensor],
    fake_features: Sequence[Tensor],
    layer_weights: Sequence[float],
    names: Sequence[str] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Eqs. 4-5: ``sum_l w_l * 1/(2 C_l H_l W_l) * ||phi_l(x) - phi_l(x_hat)||^2``.

    Our reading of the paper: eq. 4 sums the layers with weights ``w_l`` (the paper's
    100 / C_l^2, see :func:`feature_layer_weights`) over the per-layer term L_l of eq. 5, half
    the squared L2 distance between the two feature maps divided by the map size C_l H_l W_l,
    per image, averaged over the batch. Returns ``(total, {name: unweighted L_l})``.
    """
    if not (len(real_features) == len(fake_features) == len(layer_weights)):
        raise ValueError(
            f"need one weight per layer: {len(real_features)} real, {len(fake_features)} fake, "
            f"{len(layer_weights)} weights"
        )
    names = names if names is not None else [f"layer{i}" for i in range(len(real_features))]
    parts = {}
    total = real_features[0].new_zeros((), dtype=torch.float32)
    for name, real, fake, weight in zip(
        names, real_features, fake_features, layer_weights, strict=True
    ):
        per_image = (real.float() - fake.float()).square().flatten(1).sum(1)  # (B,)
        layer_loss = (per_image / (2.0 * real[0].numel())).mean()
        parts[name] = layer_loss
        total = total + weight * layer_loss
    return total, parts


def critic_loss(real_scores: Tensor, fake_scores: Tensor, label_scale: float = 1.0) -> Tensor:
    """Eqs. 6-7 (one per critic), the critic's WGAN loss ``label_scale * (E[D(fake)] - E[D(real)])``.

    ``label_scale`` is our reading of the paper's "-10 and 10 as labels": Keras-style WGAN code
    minimises ``mean(label * score)`` with labels -1 (real) and +1 (fake); labels -10 / +10
    scale both the critic loss and the generator's adversarial loss by 10. 1 = textbook WGAN.
    """
    return label_scale * (fake_scores.float().mean() - real_scores.float().mean())


def generator_adversarial_loss(fake_scores: Tensor, label_scale: float = 1.0) -> Tensor:
    """Eqs. 8-9 (one per critic), the generator's WGAN loss ``-label_scale * E[D(fake)]``."""
    return -label_scale * fake_scores.float().mean()


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``E[(||grad D(x_mix)||_2 - 1)^2]`` on random mixes.

    ``real``, ``fake``: (B,C,H,W), ``fake`` detached. The mixing weights are drawn on the
    inputs' device; the graph is kept so the penalty trains the critic.
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    return (grad.float().flatten(1).norm(dim=1) - 1.0).square().mean()


@checkpoint_safe
@dataclass(frozen=True)
class LossWeights:
    """The lambdas of eq. 10, plus an optional pixel L1 term on the hole (0 in the paper)."""

    kl: float = 1e-3  # lambda_1
    feat: float = 1.0  # lambda_2
    local_adv: float = 1e-2  # lambda_3
    global_adv: float = 1e-2  # lambda_4
    landmark: float = 1e-1  # lambda_5
    l1: float = 0.0

    def __post_init__(self) -> None:
        negative = {name: value for name, value in vars(self).items() if value < 0}
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")


@checkpoint_safe
@dataclass(frozen=True)
class CriticSettings:
    """How the two WGAN critics train (stages 2 and 3) and what their losses scale by."""

    n_critic: int = 5  # critic updates per generator update, each on its own training batch
    # bound of the critics' clipping, [-clip_value, clip_value]; None = no clipping
    clip_value: float | None = 0.01
    # 'weights' (WGAN's weight clipping after each critic step, BN scales and shifts included;
    # the algorithm the paper cites) or 'gradients' (the paper's "gradient value" read
    # literally: gradients clamped element-wise before the step)
    clip_mode: ClipMode = "weights"
    gp_weight: float = 0.0  # WGAN-GP gradient penalty per critic (0 = off); no BatchNorm critics
    noise_std: float = 0.01  # std of the Gaussian noise added to every critic input ([-1,1] units)
    # the paper's "-10 and 10 as labels" read as a scale on both WGAN losses (10); 1 = textbook
    label_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {self.n_critic}")
        if self.clip_mode not in get_args(ClipMode):
            raise ValueError(
                f"clip_mode must be one of {get_args(ClipMode)}, got {self.clip_mode!r}"
            )


# The terms each curriculum stage adds to the generator objective.
STAGE_TERMS: dict[int, tuple[str, ...]] = {
    1: ("kl", "feat", "l1"),
    2: ("kl", "feat", "l1", "local_adv", "global_adv"),
    3: ("kl", "feat", "l1", "local_adv", "global_adv", "landmark"),
}


def active_terms(stage: int, weights: LossWeights) -> tuple[str, ...]:
    """The terms of eq. 10 that ``stage`` includes and that have a non-zero weight."""
    if stage not in STAGE_TERMS:
        raise ValueError(f"stage must be one of {sorted(STAGE_TERMS)}, got {stage}")
    return tuple(name for name in STAGE_TERMS[stage] if getattr(weights, name) > 0)


def weighted_total(
    terms: dict[str, Tensor], weights: LossWeights
) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 10: ``sum_name weights.name * terms[name]``; returns ``(total, terms)``."""
    if not terms:
        raise ValueError("no active loss term: every weight of this stage is 0")
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return total, terms


class VAEGANObjective:
    """Eq. 10 and the critics' objective (eqs. 6-7) as one callable the training step treats as a
    black box: it is handed the networks' outputs and the critics, and returns ``(total, parts)``.

    It holds no parameters of its own (the critics, the VGG extractor and the landmark network
    stay registered on the Lightning module that owns them, so checkpoints keep their keys).

    Args:
        weights: the lambdas of eq. 10.
        local_size: side of the local critic's window around the hole, pixels.
        critic: the critics' input noise, gradient penalty and label scale (its update schedule
            and clipping are the training step's).
        vgg: the feature extractor of the feature term (None when ``weights.feat`` is 0).
        feature_weights: one weight per VGG layer.
        landmark_loss: the landmark term's loss (None when stage 3 has none).
    """

    def __init__(
        self,
        weights: LossWeights,
        local_size: int,
        critic: CriticSettings = CriticSettings(noise_std=0.0),
        vgg: nn.Module | None = None,
        feature_weights: Sequence[float] = (),
        landmark_loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        self.weights = weights
        self.local_size = local_size
        self.label_scale = critic.label_scale
        self.critic_noise_std = critic.noise_std
        self.gp_weight = critic.gp_weight
        self.vgg = vgg
        self.feature_weights = list(feature_weights)
        self.landmark_loss = landmark_loss

    def critic_input(self, x: Tensor) -> Tensor:
        """``x`` with the critics' input noise added."""
        std = self.critic_noise_std
        return x + std * torch.randn_like(x) if std > 0 else x

    def vgg_features(self, x: Tensor) -> list[Tensor]:
        """VGG features of ``x`` in the caller's precision (bf16 under bf16 autocast, like the
        other networks: in fp32 it held the CPU's bf16 training to 1.1x); the feature loss
        upcasts them."""
        return self.vgg(x)

    def generator(
        self,
        curriculum_stage: int,
        image: Tensor,
        output: Tensor,
        result: Tensor,
        mu: Tensor,
        logvar: Tensor,
        windows: Tensor,
        global_critic: nn.Module,
        local_critic: nn.Module,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 10 restricted to ``curriculum_stage``'s terms with non-zero weight.

        Feature, L1 and KL terms train the VAE on the whole raw ``output`` (B,3,S,S); the critics
        and the landmark loss judge the composited ``result``; ``windows`` (B,2) locate the
        local critic's crops.
        """
        terms: dict[str, Tensor] = {}
        layer_parts: dict[str, Tensor] = {}
        for name in active_terms(curriculum_stage, self.weights):
            if name == "kl":
                terms["kl"] = kl_divergence(mu, logvar)
            elif name == "feat":
                feat, layers = feature_reconstruction_loss(
                    self.vgg_features(image),
                    self.vgg_features(output),
                    self.feature_weights,
                    self.vgg.layers,
                )
                terms["feat"] = feat
                layer_parts = {f"feat_{layer}": value for layer, value in layers.items()}
            elif name == "l1":
                terms["l1"] = (output.float() - image.float()).abs().mean()
            elif name == "local_adv":
                crops = crop_windows(result, windows, self.local_size)
                scores = local_critic(self.critic_input(crops))
                terms["local_adv"] = generator_adversarial_loss(scores, self.label_scale)
            elif name == "global_adv":
                scores = global_critic(self.critic_input(result))
                terms["global_adv"] = generator_adversarial_loss(scores, self.label_scale)
            elif name == "landmark":
                if self.landmark_loss is None:
                    raise RuntimeError(
                        "stage 3 reached with landmark_weight > 0 but no landmark network: "
                        "set landmark_checkpoint"
                    )
                terms["landmark"] = self.landmark_loss(result, image)
        total, parts = weighted_total(terms, self.weights)
        return total, {**parts, **layer_parts}

    def critics(
        self,
        image: Tensor,
        fake: Tensor,
        windows: Tensor,
        global_critic: nn.Module,
        local_critic: nn.Module,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """WGAN critic objective (eqs. 6 and 7) of the critics whose generator term is on.

        ``fake`` (B,3,S,S) is the detached composited result; returns ``(total, parts)``.
        """
        pairs = []
        if self.weights.global_adv > 0:
            pairs.append(("global", global_critic, image, fake))
        if self.weights.local_adv > 0:
            size = self.local_size
            pairs.append(
                (
                    "local",
                    local_critic,
                    crop_windows(image, windows, size),
                    crop_windows(fake, windows, size),
                )
            )
        parts: dict[str, Tensor] = {}
        total = image.new_zeros((), dtype=torch.float32)
        for name, critic, real, fake_input in pairs:
            real, fake_input = self.critic_input(real), self.critic_input(fake_input)
            loss = critic_loss(critic(real), critic(fake_input), self.label_scale)
            parts[f"critic_{name}"] = loss
            total = total + loss
            if self.gp_weight > 0:
                penalty = gradient_penalty(critic, real, fake_input)
                parts[f"gp_{name}"] = penalty
                total = total + self.gp_weight * penalty
        return total, parts
