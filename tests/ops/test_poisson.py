"""Poisson blending against a dense solve of the same equations, and its invariants."""

from __future__ import annotations

import torch

from faceinpaint.ops.poisson import poisson_blend


def _dense_reference(
    source: torch.Tensor, target: torch.Tensor, hole: torch.Tensor
) -> torch.Tensor:
    """Solve sum_q (f_p - f_q) = sum_q (s_p - s_q) over in-image 4-neighbours, f_q = t_q if known."""
    height, width = hole.shape
    cells = [(r, c) for r in range(height) for c in range(width) if hole[r, c]]
    number = {cell: i for i, cell in enumerate(cells)}
    matrix = torch.zeros(len(cells), len(cells), dtype=torch.float64)
    rhs = torch.zeros(len(cells), dtype=torch.float64)
    for (r, c), i in number.items():
        for q in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if not (0 <= q[0] < height and 0 <= q[1] < width):
                continue
            matrix[i, i] += 1
            rhs[i] += source[r, c] - source[q]
            if q in number:
                matrix[i, number[q]] -= 1
            else:
                rhs[i] += target[q]
    solution = torch.linalg.solve(matrix, rhs)
    result = target.clone().double()
    for (r, c), i in number.items():
        result[r, c] = solution[i]
    return result


def test_matches_a_dense_solve_for_an_inner_and_a_border_hole():
    generator = torch.Generator().manual_seed(0)
    source = torch.rand(2, 1, 6, 7, generator=generator, dtype=torch.float64) - 0.5
    target = torch.rand(2, 1, 6, 7, generator=generator, dtype=torch.float64) - 0.5
    mask = torch.zeros(2, 1, 6, 7, dtype=torch.float64)
    mask[0, 0, 1:4, 2:5] = 1.0  # inside
    mask[1, 0, :, :3] = 1.0  # touches three image borders (Neumann there)
    blended = poisson_blend(source, target, mask, iterations=100, clamp=False)
    for sample in range(2):
        expected = _dense_reference(source[sample, 0], target[sample, 0], mask[sample, 0].bool())
        torch.testing.assert_close(blended[sample, 0], expected, atol=1e-9, rtol=0)


def test_a_source_offset_from_the_target_by_a_constant_gives_the_target():
    target = torch.rand(1, 3, 16, 16) * 1.2 - 0.6
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :, :8] = 1.0
    blended = poisson_blend(target + 0.3, target, mask)
    torch.testing.assert_close(blended, target, atol=1e-5, rtol=0)


def test_known_pixels_are_the_targets_and_hole_pixels_of_the_target_are_never_read():
    generator = torch.Generator().manual_seed(1)
    source = torch.rand(2, 3, 12, 12, generator=generator) * 2 - 1
    target = torch.rand(2, 3, 12, 12, generator=generator) * 2 - 1
    mask = torch.zeros(2, 1, 12, 12)
    mask[..., 3:9, 4:10] = 1.0
    tampered = torch.where(mask.bool(), torch.full_like(target, float("nan")), target)
    blended = poisson_blend(source, target, mask, iterations=64)
    assert torch.equal(blended, poisson_blend(source, tampered, mask, iterations=64))
    known = (mask == 0).expand_as(target)
    assert torch.equal(blended[known], target[known])


def test_a_sample_without_known_pixels_gets_the_source_and_its_neighbour_is_unaffected():
    source = torch.rand(2, 3, 8, 8) * 2 - 1
    target = torch.rand(2, 3, 8, 8) * 2 - 1
    mask = torch.ones(2, 1, 8, 8)
    mask[1, :, :, 4:] = 0.0
    blended = poisson_blend(source, target, mask, iterations=64)
    torch.testing.assert_close(blended[0], source[0])
    alone = poisson_blend(source[1:], target[1:], mask[1:], iterations=64)
    torch.testing.assert_close(blended[1:], alone, atol=1e-6, rtol=0)
