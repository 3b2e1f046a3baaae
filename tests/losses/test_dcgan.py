"""DCGAN training losses against hand-computed values."""

from __future__ import annotations

import math

import torch

from faceinpaint.losses.dcgan import discriminator_loss, generator_loss


def test_undecided_logits_cost_log_two_per_term():
    zeros = torch.zeros(4)
    total, parts = discriminator_loss(zeros, zeros)
    assert math.isclose(total.item(), 2 * math.log(2), rel_tol=1e-6)
    assert parts["d_real"].item() == parts["d_fake"].item() == 0.5
    assert math.isclose(generator_loss(zeros).item(), math.log(2), rel_tol=1e-6)


def test_a_confident_right_discriminator_costs_almost_nothing():
    total, _ = discriminator_loss(torch.full((3,), 20.0), torch.full((3,), -20.0))
    assert total.item() < 1e-6
    assert generator_loss(torch.full((3,), -20.0)).item() > 19.0  # G is caught out
