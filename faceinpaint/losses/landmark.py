"""Landmark losses: the VAE-GAN paper's logistic map loss, the thesis' dlib count, a smooth version.

Which gradients flow:

* ``landmark_map_logistic_loss`` / ``LandmarkLoss(kind="logistic")``: through the (frozen) ``LandmarkNet`` into
  the inpainted image; the label maps of the original are detached.
* ``thesis_landmark_loss`` / ``DlibLandmarkLoss``: nowhere. dlib runs on uint8 copies on the host,
  and a step count has zero derivative anyway; the result has no graph (``requires_grad`` False).
* ``soft_threshold_landmark_loss`` / ``LandmarkLoss`` (the default kind): through the soft-argmax
  coordinates of the frozen network into the inpainted image; the reference landmarks are detached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceinpaint.landmarks.ibug import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from faceinpaint.landmarks.network import LandmarkNet
from faceinpaint.landmarks.teacher import DlibTeacher

THESIS_THRESHOLD_PX = 3.0


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


class LandmarkLoss(nn.Module):
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

    def train(self, mode: bool = True) -> LandmarkLoss:
        super().train(mode)
        self.net.eval()  # batch-norm statistics stay those of the trained network
        return self

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
