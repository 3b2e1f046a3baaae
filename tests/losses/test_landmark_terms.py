"""The search's landmark adapters: per-candidate values of the landmark module's losses."""

from __future__ import annotations

import pytest
import torch

from faceinpaint.landmarks.network import LandmarkNet
from faceinpaint.losses.landmark import (
    DlibLandmarkTerm,
    NetworkLandmarkTerm,
    build_landmark_term,
    soft_threshold_landmark_loss,
    thesis_landmark_loss,
)


def test_network_term_splits_the_soft_count_per_candidate_and_passes_gradients():
    torch.manual_seed(0)
    net = LandmarkNet(widths=(4, 4, 4, 4, 4))
    term = NetworkLandmarkTerm(net)
    damaged = torch.rand(2, 3, 32, 32) * 2 - 1
    targets = term.targets(damaged, torch.zeros(2, 1, 32, 32))
    generated = (torch.rand(2, 3, 3, 32, 32) * 2 - 1).requires_grad_(True)  # (B, N, 3, H, W)
    per_candidate = term(generated, targets)
    assert per_candidate.shape == (2, 3)
    _, coords = net(generated.detach().flatten(0, 1))
    expected = soft_threshold_landmark_loss(coords, targets.points.repeat_interleave(3, 0))
    torch.testing.assert_close(per_candidate.sum(), expected)
    per_candidate[0, 1].backward()
    touched = generated.grad.flatten(2).abs().sum(2) > 0  # (B, N)
    assert touched.tolist() == [[False, True, False], [False, False, False]]
    assert all(p.grad is None for p in net.parameters()) and not net.training


class _FakeTeacher:
    """Stands in for dlib: landmarks = a constant offset per image; image 1 has no face."""

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift = image.mean(dim=(1, 2, 3))[:, None, None] * 10  # (M, 1, 1)
        points = torch.zeros(image.shape[0], 68, 2) + shift
        found = image[:, 0, 0, 0] < 0.5
        points[~found] = float("nan")
        return points, found


def test_dlib_term_scores_the_thesis_count_and_penalises_a_lost_face():
    term = DlibLandmarkTerm(_FakeTeacher())
    assert not term.differentiable
    damaged = torch.zeros(1, 3, 8, 8)
    targets = term.targets(damaged, torch.zeros(1, 1, 8, 8))
    generated = torch.zeros(1, 3, 3, 8, 8)
    generated[0, 1] += 0.5  # every point 5 px off on both axes: 68
    generated[0, 2, 0, 0, 0] = 1.0  # no face found
    scores = term(generated, targets)
    far = thesis_landmark_loss(torch.full((1, 68, 2), 5.0), torch.zeros(1, 68, 2))
    assert scores.tolist()[0][:2] == pytest.approx([0.0, float(far)])
    assert scores[0, 2].item() == 68.0


def test_network_term_without_checkpoint_is_a_clear_error():
    with pytest.raises(ValueError, match="landmark_checkpoint"):
        build_landmark_term("network", None)


def _face_with_a_hole() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(1,3,32,32) face, its (1,1,32,32) mask (1 = hole) and the damaged input (hole zeroed)."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 4:28, 4:28] = 1.0
    return image, mask, image * (1 - mask)


def test_dlib_term_scores_candidates_masked_like_the_input_by_default():
    """The thesis scores G(z) "applied with the same mask": a candidate whose known pixels are the
    input's scores 0 whatever its hole holds; ``unmasked`` scores the hole as well."""
    image, mask, damaged = _face_with_a_hole()
    candidate = image.clone()
    candidate[..., 4:28, 4:28] = 1.0  # a bright hole: the fake teacher's landmarks move 5.6 px
    generated = candidate[:, None]  # (B, N=1, 3, H, W)
    masked = DlibLandmarkTerm(_FakeTeacher())
    unmasked = DlibLandmarkTerm(_FakeTeacher(), candidates="unmasked")
    assert masked(generated, masked.targets(damaged, mask)).item() == 0.0
    assert unmasked(generated, unmasked.targets(damaged, mask)).item() > 0.0


def test_network_term_masks_candidates_by_default_and_then_ignores_the_hole():
    torch.manual_seed(0)
    net = LandmarkNet(widths=(4, 4, 4, 4, 4)).eval()
    image, mask, damaged = _face_with_a_hole()
    candidate = (image + 0.5 * torch.randn_like(image)).clamp(-1, 1)
    generated = candidate[:, None].clone().requires_grad_(True)  # (B, N=1, 3, H, W)
    _, reference = net(damaged)
    masked = NetworkLandmarkTerm(net)
    loss = masked(generated, masked.targets(damaged, mask))
    _, seen = net(candidate * (1 - mask))
    torch.testing.assert_close(loss.sum(), soft_threshold_landmark_loss(seen, reference))
    loss.sum().backward()
    hole_grad = generated.grad[0, 0][:, 4:28, 4:28]
    assert hole_grad.abs().sum() == 0 and generated.grad.abs().sum() > 0
    unmasked = NetworkLandmarkTerm(net, candidates="unmasked")
    _, whole = net(candidate)
    torch.testing.assert_close(
        unmasked(generated, unmasked.targets(damaged, mask)).sum(),
        soft_threshold_landmark_loss(whole, reference),
    )


def test_landmark_candidates_option_is_checked():
    with pytest.raises(ValueError, match="'masked' or 'unmasked'"):
        DlibLandmarkTerm(_FakeTeacher(), candidates="hole")
