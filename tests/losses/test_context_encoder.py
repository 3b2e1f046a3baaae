"""Context Encoder losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from faceinpaint.losses.context_encoder import (
    ContextLossWeights,
    context_encoder_loss,
    hole_l2_loss,
)


def _mask(batch: int = 2, size: int = 8) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, 2:6, 2:6] = 1.0
    return mask


def test_a_loss_of_x_against_x_is_zero() -> None:
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert hole_l2_loss(x, x, _mask()).item() == 0.0
    total, parts = context_encoder_loss(x, x, _mask(), None, ContextLossWeights(adv=0.0))
    assert total.item() == 0.0 and set(parts) == {"rec"}


def test_hole_l2_ignores_the_known_pixels() -> None:
    target = torch.zeros(2, 3, 8, 8)
    mask = _mask()
    output = torch.where(mask > 0, 0.0, 5.0).expand(2, 3, 8, 8)  # wrong only outside the hole
    assert hole_l2_loss(output, target, mask).item() == 0.0


def test_hole_l2_is_the_mean_over_hole_pixels_and_channels() -> None:
    target = torch.zeros(2, 3, 8, 8)
    mask = _mask()
    output = torch.zeros(2, 3, 8, 8)
    output[0, 0, 2, 2] = 2.0  # one hole value off by 2, among 2 x 3 x 16 hole values
    assert math.isclose(hole_l2_loss(output, target, mask).item(), 4.0 / 96, rel_tol=1e-6)
    assert hole_l2_loss(output, target, torch.zeros_like(mask)).item() == 0.0  # no hole


def test_weights_join_the_parts_and_adv_is_non_saturating_bce() -> None:
    target = torch.zeros(1, 3, 8, 8)
    output = torch.full((1, 3, 8, 8), 0.5)
    mask = _mask(1)
    total, parts = context_encoder_loss(output, target, mask, torch.zeros(1), ContextLossWeights())
    assert math.isclose(parts["rec"].item(), 0.25, rel_tol=1e-6)
    assert math.isclose(parts["adv"].item(), math.log(2), rel_tol=1e-6)  # D undecided
    assert math.isclose(total.item(), 0.999 * 0.25 + 0.001 * math.log(2), rel_tol=1e-6)


def test_an_adversarial_weight_needs_logits_and_weights_must_not_be_negative() -> None:
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match="needs the discriminator's logits"):
        context_encoder_loss(x, x, _mask(1), None, ContextLossWeights())
    with pytest.raises(ValueError, match="must be >= 0"):
        ContextLossWeights(rec=-1.0)
