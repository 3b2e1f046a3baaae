"""Context weights on hand-computed masks, the context and prior losses' known values."""

from __future__ import annotations

import pytest
import torch

from faceinpaint.losses.latent_search import context_weights, prior_loss, weighted_context_loss


def _mask(size: int, holes: list[tuple[int, int]]) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size)
    for row, col in holes:
        mask[0, 0, row, col] = 1.0
    return mask


def test_single_hole_pixel_weighs_its_known_neighbours_one_over_window_area():
    weights = context_weights(_mask(9, [(4, 4)]), window=7)[0, 0]
    expected = torch.zeros(9, 9)
    expected[1:8, 1:8] = 1 / 49  # Chebyshev distance <= 3 from the hole
    expected[4, 4] = 0.0  # the hole itself
    torch.testing.assert_close(weights, expected)


def test_polarity_hole_weighs_zero_and_far_known_pixels_weigh_zero():
    # A public port inverts this: there the hole gets weight and the border of the known region none.
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1.0
    weights = context_weights(mask)[0, 0]
    assert (weights[4:12, 4:12] == 0).all(), "hole pixels must weigh 0"
    assert weights[0, 0] == 0, "a known pixel 4+ px from the hole must weigh 0"
    assert weights[3, 8] == pytest.approx(21 / 49), "row just above the hole: 3 hole rows x 7 cols"
    assert weights[3, 3] == pytest.approx(9 / 49), "diagonal corner: 3 x 3 hole pixels"


def test_window_is_zero_padded_and_divided_by_its_full_area():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, :4] = 1.0  # left half
    weights = context_weights(mask)[0, 0]
    assert weights[4, 4] == pytest.approx(21 / 49)  # 7 rows x 3 hole columns
    assert weights[0, 4] == pytest.approx(12 / 49)  # rows -3..-1 are outside: 4 rows x 3
    assert weights[4, 7] == 0.0  # 4 columns from the hole


def test_window_three_by_hand_with_two_holes():
    weights = context_weights(_mask(4, [(0, 0), (1, 1)]), window=3)[0, 0]
    expected = (
        torch.tensor(
            [
                [0, 2, 1, 0],
                [2, 0, 1, 0],
                [1, 1, 1, 0],
                [0, 0, 0, 0],
            ]
        )
        / 9.0
    )
    torch.testing.assert_close(weights, expected)


@pytest.mark.parametrize("window", [0, 4, -3])
def test_bad_window_is_rejected(window):
    with pytest.raises(ValueError, match="odd and positive"):
        context_weights(_mask(4, [(0, 0)]), window=window)


def test_weighted_context_loss_known_value_and_candidate_broadcast():
    mask = _mask(6, [(2, 2), (2, 3)])
    weights = context_weights(mask, window=3)
    damaged = torch.rand(1, 3, 6, 6) * 2 - 1
    generated = torch.stack([damaged + 0.5, damaged - 0.25], dim=1)  # (1, 2, 3, 6, 6)
    loss = weighted_context_loss(generated, damaged[:, None], weights[:, None])
    total_weight = float(weights.sum()) * 3  # 3 channels
    torch.testing.assert_close(loss, torch.tensor([[0.5, 0.25]]) * total_weight)
    assert weighted_context_loss(damaged, damaged, weights).item() == 0.0


def test_prior_loss_is_weighted_log_one_minus_sigmoid_and_finite_when_saturated():
    logits = torch.tensor([-3.0, 0.0, 2.0])
    expected = 0.003 * torch.log(1 - torch.sigmoid(logits))
    torch.testing.assert_close(prior_loss(logits), expected)
    saturated = prior_loss(torch.tensor([200.0]), weight=0.5)
    assert torch.isfinite(saturated).all() and saturated.item() == pytest.approx(-100.0)
