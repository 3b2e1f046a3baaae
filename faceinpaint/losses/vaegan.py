"""Losses of the VAE-GAN inpainting method (IJIES 2020, eqs. 3-10).

All losses are computed in float32: inputs are upcast with ``.float()``, so callers under bf16
autocast get fp32 losses from bf16 activations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


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
