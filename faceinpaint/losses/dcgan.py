"""Losses of DCGAN training (Radford et al. 2016): non-saturating BCE on the discriminator's logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def discriminator_loss(real_logit: Tensor, fake_logit: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """BCE of D on real (label 1) and fake (label 0) logits, ``(total, parts)``; the parts are
    D's mean probabilities, ``d_real`` and ``d_fake`` (detached)."""
    real_loss = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
    fake_loss = F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    parts = {
        "d_real": torch.sigmoid(real_logit).mean().detach(),
        "d_fake": torch.sigmoid(fake_logit).mean().detach(),
    }
    return real_loss + fake_loss, parts


def generator_loss(fake_logit: Tensor) -> Tensor:
    """Non-saturating GAN loss: BCE of D(G(z))'s logits against label 1."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
