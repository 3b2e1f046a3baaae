"""Losses of the DCGAN latent search (Yeh et al. 2017, "Semantic image inpainting with deep
generative models", eqs. 2-4): a weighted context loss that ties G(z) to the known pixels near
the hole and a prior loss that keeps G(z) on the generator's image manifold. The thesis's landmark
term (:class:`faceinpaint.losses.landmark.LandmarkTerm`) lives with the other landmark losses.

All losses here return one value per sample, ``(B,)``: the search sums them over candidates, so
each candidate's gradient depends on that candidate alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from faceinpaint.batch import sample_generator

# The held-out pixels of image ``index`` are drawn from the generator of
# ``(seed + HOLDOUT_STREAM, index)``, a stream apart from the search's starts ``(seed, index)``.
HOLDOUT_STREAM = 104_729


def context_weights(mask: Tensor, window: int = 7) -> Tensor:
    """(B,1,H,W) importance of each pixel for the context loss; ``mask`` (B,1,H,W), 1 = hole.

    A known pixel weighs the fraction of hole pixels in the ``window`` x ``window`` square
    centred on it; hole pixels weigh 0. The window is zero-padded: positions outside the image
    count as known, and the fraction is always over ``window ** 2`` positions, so a known
    pixel in an image corner next to one hole pixel weighs ``1 / 49`` like anywhere else.
    (Yeh et al. write the mask with 1 = known; in the project's polarity the hole is 1, and a
    pixel far from the hole weighs 0.)
    """
    if window < 1 or window % 2 != 1:
        raise ValueError(f"context window must be odd and positive, got {window}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (B,1,H,W), got {tuple(mask.shape)}")
    hole = mask.to(torch.promote_types(mask.dtype, torch.float32))
    box = torch.ones(1, 1, window, window, device=mask.device, dtype=hole.dtype)
    hole_fraction = F.conv2d(hole, box, padding=window // 2) / window**2  # (B, 1, H, W)
    return hole_fraction * (1.0 - hole)


def weighted_context_loss(generated: Tensor, damaged: Tensor, weights: Tensor) -> Tensor:
    """(...) ``|| W * (G(z) - y) ||_1``, summed over the last three dims (channels, pixels).

    Args:
        generated: (..., 3, H, W) G(z) in [-1, 1], e.g. (B, N, 3, H, W) candidates.
        damaged: the damaged input y, broadcastable to ``generated`` (e.g. (B, 1, 3, H, W));
            its hole pixels must weigh 0 in ``weights``.
        weights: from :func:`context_weights`, broadcastable likewise (e.g. (B, 1, 1, H, W)).
    """
    return (weights * (generated - damaged)).abs().sum((-3, -2, -1))


def context_coverage(weights: Tensor, mask: Tensor) -> Tensor:
    """(B,) the share of each image's known pixels that weigh in the context loss: about 0.14
    for the thesis's centre square at 64 px (a 3-pixel ring around a 32 x 32 hole), 0.09 for a
    half face, 1 for 80 % random pixels. ``weights`` (B,1,H,W) from :func:`context_weights`,
    ``mask`` (B,1,H,W), 1 = hole; a face without known pixels covers 0."""
    known = (mask < 0.5).flatten(1)
    weighing = (weights.flatten(1) > 0) & known
    return weighing.sum(1).to(weights.dtype) / known.sum(1).clamp(min=1).to(weights.dtype)


def prior_loss(logits: Tensor, weight: float = 0.003) -> Tensor:
    """(B,) ``weight * log(1 - D(G(z)))`` from D's logits, as ``-weight * softplus(logits)``.

    ``log(1 - sigmoid(l)) = -softplus(l)`` exactly, without the ``log(0)`` of a saturated
    sigmoid. Minimising it pushes D(G(z)) towards 1 ("looks real").
    """
    return -weight * F.softplus(logits)


def holdout_split(
    weights: Tensor, share: float, index: Tensor, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``(fit, held_out)`` context weights, each (B,1,H,W): a random ``share`` of the pixels that
    weigh in the context loss (the known pixels nearest the hole) is held out of it.

    ``weights`` (B,1,H,W) from :func:`context_weights`; ``index`` (B,) int64 seeds image b's draw
    by ``(seed + HOLDOUT_STREAM, index[b])`` alone, so an image holds out the same pixels in any
    batch and on any device. ``fit + held_out == weights``; the held-out error of a candidate
    is :func:`weighted_context_loss` with ``held_out``.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"holdout share must be in (0, 1), got {share}")
    if index.shape != (weights.shape[0],):
        raise ValueError(f"index must be ({weights.shape[0]},), got {tuple(index.shape)}")
    draws = torch.stack(
        [
            torch.rand(weights.shape[1:], generator=sample_generator(seed + HOLDOUT_STREAM, i))
            for i in index.tolist()
        ]
    ).to(weights.device)  # (B, 1, H, W) uniform in [0, 1)
    held = (draws < share).to(weights.dtype)
    return weights * (1.0 - held), weights * held
