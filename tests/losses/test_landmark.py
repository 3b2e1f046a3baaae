"""The three landmark losses and the NME metric: hand cases and where gradients flow."""

from __future__ import annotations

import math

import pytest
import torch

from faceinpaint.landmarks.network import LandmarkNet
from faceinpaint.losses.landmark import (
    DlibLandmarkLoss,
    LandmarkLoss,
    landmark_map_logistic_loss,
    landmark_nme,
    soft_threshold_landmark_loss,
    thesis_landmark_loss,
)


def _points(batch: int = 1) -> torch.Tensor:
    return torch.arange(batch * 68 * 2, dtype=torch.float32).reshape(batch, 68, 2)


def test_thesis_loss_hand_cases() -> None:
    true = _points(2)
    pred = true.clone()
    assert thesis_landmark_loss(pred, true) == 0
    pred[0, 0, 0] += 3.0  # exactly 3 px: not counted (strictly greater)
    assert thesis_landmark_loss(pred, true) == 0
    pred[0, 1, 0] += 3.5  # x only: +0.5
    pred[0, 2] -= 10.0  # x and y: +1
    pred[1, 67, 1] += 4.0  # other image, y only: +0.5
    assert thesis_landmark_loss(pred, true) == 2.0
    pred = true + 100.0  # every coordinate: 68 points * 2 images
    assert thesis_landmark_loss(pred, true) == 136.0


def test_thesis_loss_skips_rows_without_a_face() -> None:
    true, pred = _points(2), _points(2) + 100.0
    true[1] = float("nan")
    assert thesis_landmark_loss(pred, true) == 68.0


def test_soft_threshold_tends_to_thesis_loss() -> None:
    true = _points(1)
    pred = true.clone()
    pred[0, :10, 0] += 5.0
    pred[0, 10:20] += 1.0
    assert thesis_landmark_loss(pred, true) == 5.0
    soft = soft_threshold_landmark_loss(pred, true, tau=0.05)
    assert abs(float(soft) - 5.0) < 1e-3
    # At exactly the threshold each coordinate counts half of 0.5.
    at = soft_threshold_landmark_loss(true + 3.0, true, tau=0.5)
    assert math.isclose(float(at), 68 * 2 * 0.25, rel_tol=1e-6)


def test_nme_hand_case() -> None:
    true = torch.zeros(1, 68, 2)
    true[0, 36] = torch.tensor([10.0, 20.0])
    true[0, 45] = torch.tensor([30.0, 20.0])  # inter-ocular distance 20
    pred = true + torch.tensor([3.0, 4.0])  # every point 5 px off
    torch.testing.assert_close(landmark_nme(pred, true), torch.tensor([0.25]))
    assert landmark_nme(true, true).item() == 0.0


def test_logistic_loss_is_smallest_at_the_label() -> None:
    logits = torch.randn(2, 68, 8, 8, generator=torch.Generator().manual_seed(0))
    at_label = landmark_map_logistic_loss(logits, logits)
    assert landmark_map_logistic_loss(logits + 1.0, logits) > at_label
    assert landmark_map_logistic_loss(logits - 1.0, logits) > at_label


@pytest.mark.parametrize("kind", ["soft_threshold", "logistic"])
def test_gradient_reaches_the_result_image_not_the_network(kind: str) -> None:
    torch.manual_seed(0)
    loss_fn = LandmarkLoss(LandmarkNet(widths=[8, 8, 16, 16]), kind=kind, tau=2.0)
    loss_fn.train()
    assert not loss_fn.net.training
    result = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    reference = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    loss = loss_fn(result, reference)
    loss.backward()
    assert result.grad is not None and result.grad.abs().sum() > 0
    assert reference.grad is None
    assert all(p.grad is None for p in loss_fn.net.parameters())


def test_dlib_loss_has_no_gradient_path() -> None:
    class FakeTeacher:
        """Stands in for dlib: landmarks from pixel values, through a host copy as dlib does."""

        def __call__(self, image: torch.Tensor):
            points = image.detach().cpu().mean(dim=1).flatten(1)[:, :136].reshape(-1, 68, 2) * 10
            return points.to(image.device), torch.ones(image.shape[0], dtype=torch.bool)

    result = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss = DlibLandmarkLoss(FakeTeacher())(result * 2 - 1, torch.zeros(2, 3, 16, 16))
    assert not loss.requires_grad and loss.grad_fn is None
    assert loss > 0
