"""Losses of the Context Encoder (Pathak et al. 2016, eqs. 1-3): the masked L2 reconstruction
of the hole and a non-saturating adversarial term, joined with weights 0.999 / 0.001.

The paper's reconstruction loss weighs an overlap band around the hole ten times; ours is the
hole alone, the squared error averaged over the hole's pixels and channels. The discriminator's
loss is DCGAN's (:func:`faceinpaint.losses.dcgan.discriminator_loss`). Losses are computed in
float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from faceinpaint.losses.dcgan import generator_loss


@dataclass(frozen=True)
class ContextLossWeights:
    """lambda_rec and lambda_adv of eq. 3; a weight of 0 means its term is never computed."""

    rec: float = 0.999
    adv: float = 0.001

    def __post_init__(self) -> None:
        if self.rec < 0 or self.adv < 0:
            raise ValueError(f"loss weights must be >= 0, got rec={self.rec}, adv={self.adv}")


def hole_l2_loss(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the hole: sum over hole pixels and channels of
    ``(output - target)^2``, divided by channels x hole pixels of the whole batch.

    ``output``, ``target`` (B,C,H,W); ``mask`` (B,1,H,W), 1 = hole. A batch without a hole
    scores 0.
    """
    hole = mask.float()
    squared_error = (output.float() - target.float()).square() * hole  # (B, C, H, W)
    hole_values = hole.sum() * output.shape[1]
    return squared_error.sum() / hole_values.clamp_min(1.0)


def context_encoder_loss(
    output: Tensor,
    target: Tensor,
    mask: Tensor,
    fake_logit: Tensor | None,
    weights: ContextLossWeights,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The generator's objective ``rec * L_rec + adv * L_adv``, ``(total, parts)``.

    Args:
        output: (B,3,H,W) the generator's raw image.
        target: (B,3,H,W) the original faces.
        mask: (B,1,H,W), 1 = hole.
        fake_logit: (B,) the discriminator's logits of the composited results; may be None
            when ``weights.adv`` is 0.
        weights: the two lambdas.

    Returns the total and its unweighted parts, ``rec`` (and ``adv`` when its weight is > 0).
    """
    total = output.new_zeros((), dtype=torch.float32)
    parts: dict[str, Tensor] = {}
    if weights.rec > 0:
        parts["rec"] = hole_l2_loss(output, target, mask)
        total = total + weights.rec * parts["rec"]
    if weights.adv > 0:
        if fake_logit is None:
            raise ValueError(f"adv weight {weights.adv} > 0 needs the discriminator's logits")
        parts["adv"] = generator_loss(fake_logit.float())
        total = total + weights.adv * parts["adv"]
    return total, parts
