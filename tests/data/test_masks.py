"""Invariants of the mask generators: polarity, exact areas, statistics, determinism, devices."""

from __future__ import annotations

import pytest
import torch

from faceinpaint.data.masks import (
    FREE_FORM_PRESETS,
    MaskSpec,
    _render_spans,
    _stroke_spans,
    as_mask_spec,
    make_masks,
    mask_hash,
)

EVERY_SPEC = [
    MaskSpec("center"),
    MaskSpec("left"),
    MaskSpec("right"),
    MaskSpec("random_pixels"),
    MaskSpec("random_square", min_side=0.25, max_side=0.5),
    MaskSpec("free_form", preset="thin"),
    MaskSpec("free_form", preset="medium"),
    MaskSpec("free_form", preset="thick"),
]
RANDOM_SPECS = [s for s in EVERY_SPEC if s.kind in ("random_pixels", "random_square", "free_form")]
# Target mean hole area per preset, at 64 and 128 px (see FREE_FORM_PRESETS).
FREE_FORM_AREA = {"thin": (0.05, 0.15), "medium": (0.15, 0.30), "thick": (0.25, 0.45)}


def spec_id(spec: MaskSpec) -> str:
    return f"free_form-{spec.preset}" if spec.kind == "free_form" else spec.kind


def hole_area(masks: torch.Tensor) -> torch.Tensor:
    return masks.mean(dim=(1, 2, 3))  # (B,) fraction of pixels in the hole


@pytest.mark.parametrize("spec", EVERY_SPEC, ids=spec_id)
@pytest.mark.parametrize("size", [64, (48, 80)])
def test_masks_are_binary_float_holes_of_the_requested_shape(spec, size):
    masks = make_masks(spec, torch.arange(6), size, seed=3)
    height, width = (size, size) if isinstance(size, int) else size
    assert masks.shape == (6, 1, height, width)
    assert masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    area = hole_area(masks)
    assert bool((area > 0).all()) and bool((area < 1).all()), area


@pytest.mark.parametrize("size", [64, 128])
def test_center_hole_is_the_central_quarter(size):
    masks = make_masks("center", torch.arange(3), size)
    expected = torch.zeros(size, size)
    expected[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    assert masks.sum().item() == 3 * size * size / 4
    assert torch.equal(masks, expected.expand(3, 1, size, size))


def test_center_side_sets_the_square():
    masks = make_masks(MaskSpec("center", side=0.25), torch.arange(1), 128)
    assert masks.sum().item() == 32 * 32
    assert masks[0, 0, 48:80, 48:80].all()


@pytest.mark.parametrize("size", [64, 128])
def test_left_and_right_holes_are_exact_halves(size):
    left = make_masks("left", torch.arange(2), size)
    right = make_masks("right", torch.arange(2), size)
    half = size // 2
    assert left[..., :half].eq(1).all() and left[..., half:].eq(0).all()
    assert right[..., :half].eq(0).all() and right[..., half:].eq(1).all()
    assert torch.equal(left + right, torch.ones_like(left))


@pytest.mark.parametrize("fraction", [0.8, 0.3])
def test_random_pixels_miss_the_requested_fraction(fraction):
    masks = make_masks(MaskSpec("random_pixels", fraction=fraction), torch.arange(4), 128)
    # One 128x128 mask: the standard error is sqrt(f(1-f)/16384) <= 0.004; allow ~4 of them.
    assert (hole_area(masks) - fraction).abs().max().item() < 0.015


def test_random_pixels_fraction_one_removes_every_pixel():
    masks = make_masks(MaskSpec("random_pixels", fraction=1.0), torch.arange(2), 32)
    assert masks.eq(1).all()


def square_extents(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per mask: hole rows, hole cols, first hole row, for masks that are one filled square."""
    rows = masks[:, 0].amax(dim=2)  # (B, H)
    cols = masks[:, 0].amax(dim=1)  # (B, W)
    return rows.sum(1), cols.sum(1), rows.argmax(1)


def test_random_square_sides_lie_in_bounds_and_squares_lie_inside():
    masks = make_masks(
        MaskSpec("random_square", min_side=0.25, max_side=0.5), torch.arange(256), 128
    )
    height, width, top = square_extents(masks)
    assert torch.equal(height, width)
    assert torch.equal(hole_area(masks) * 128 * 128, (height * width).float())  # filled square
    assert height.min().item() == 32 and height.max().item() == 64
    assert top.min().item() <= 4 and (top + height).max().item() >= 124  # spans the image


def test_random_square_with_equal_bounds_has_one_side():
    masks = make_masks(MaskSpec("random_square"), torch.arange(32), 128)
    height, width, top = square_extents(masks)
    assert height.eq(64).all() and width.eq(64).all()
    assert len(top.unique()) > 8


def chi_square(values: torch.Tensor, n_bins: int) -> float:
    counts = torch.bincount(values, minlength=n_bins).double()
    assert len(counts) == n_bins, f"values outside [0, {n_bins})"
    expected = len(values) / n_bins
    return ((counts - expected) ** 2 / expected).sum().item()


def test_random_square_sides_and_positions_are_uniform():
    sides = make_masks(
        MaskSpec("random_square", min_side=0.25, max_side=0.5), torch.arange(2048), 64
    )
    side, _, _ = square_extents(sides)
    assert chi_square(side.long() - 16, 17) < 39.3  # 99.9 % quantile of chi2(16)
    fixed = make_masks(MaskSpec("random_square"), torch.arange(2048), 64)
    _, _, top = square_extents(fixed)
    left = fixed[:, 0].amax(dim=1).argmax(dim=1)
    assert chi_square(top, 33) < 62.5 and chi_square(left, 33) < 62.5  # chi2(32) at 99.9 %


@pytest.mark.parametrize("size", [64, 128])
def test_free_form_area_ranges_order_the_presets(size):
    means = {}
    for preset, (low, high) in FREE_FORM_AREA.items():
        area = hole_area(make_masks(MaskSpec("free_form", preset=preset), torch.arange(64), size))
        means[preset] = area.mean().item()
        assert low <= means[preset] <= high, (preset, size, means[preset])
        assert area.min().item() > 0.01, (preset, size, area.min().item())
    assert means["thin"] < means["medium"] < means["thick"], means


def brute_force_capsules(ax, ay, bx, by, brush, on, height, width):
    """Direct per-pixel test of every segment: within brush/2 of segment AB, in float64."""
    y, x = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    ax, ay, bx, by, radius = (t.double()[..., None, None] for t in (ax, ay, bx, by, brush / 2))
    dx, dy = bx - ax, by - ay
    length_sq = (dx * dx + dy * dy).clamp(min=1e-12)
    t = (((x - ax) * dx + (y - ay) * dy) / length_sq).clamp(0, 1)
    dist_sq = (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2
    return ((dist_sq <= radius * radius + 1e-9) & on[..., None, None]).any(dim=1)


def test_stroke_rendering_matches_a_direct_distance_test():
    gen = torch.Generator().manual_seed(0)
    batch, n, height, width = 4, 12, 40, 56
    ax, bx = (torch.randint(-5, width + 5, (batch, n), generator=gen) for _ in range(2))
    ay, by = (torch.randint(-5, height + 5, (batch, n), generator=gen) for _ in range(2))
    bx[:, 0], by[:, 0] = ax[:, 0], ay[:, 0]  # zero-length segments: a disc
    brush = torch.randint(1, 16, (batch, n), generator=gen)
    on = torch.rand(batch, n, generator=gen) < 0.7
    first, last = _stroke_spans(ax, ay, bx, by, brush, on, height)
    drawn = _render_spans(first, last, width)
    expected = brute_force_capsules(ax, ay, bx, by, brush, on, height, width)
    assert torch.equal(drawn, expected), (drawn != expected).sum()


def test_stroke_rendering_hand_case():
    # Horizontal segment (2,5)-(10,5), brush 3 (radius 1.5): rows 4..6, columns 1..11.
    one = torch.ones(1, 1, dtype=torch.int64)
    first, last = _stroke_spans(2 * one, 5 * one, 10 * one, 5 * one, 3 * one, one.bool(), 12)
    drawn = _render_spans(first, last, 14)[0]
    expected = torch.zeros(12, 14, dtype=torch.bool)
    expected[4:7, 1:12] = True
    assert torch.equal(drawn, expected)


@pytest.mark.parametrize("spec", RANDOM_SPECS, ids=spec_id)
def test_a_sample_mask_ignores_its_batch_neighbours_and_order(spec):
    together = make_masks(spec, torch.tensor([7, 3, 11, 5]), 64, seed=2)
    alone = make_masks(spec, torch.tensor([3]), 64, seed=2)
    shuffled = make_masks(spec, torch.tensor([5, 11, 3]), 64, seed=2)
    assert torch.equal(together[1], alone[0])
    assert torch.equal(together[1:], shuffled.flip(0))


@pytest.mark.parametrize("spec", RANDOM_SPECS, ids=spec_id)
def test_seed_and_index_change_the_mask(spec):
    base = make_masks(spec, torch.tensor([4, 4]), 64, seed=0)
    assert torch.equal(base[0], base[1])
    assert torch.equal(base, make_masks(spec, torch.tensor([4, 4]), 64, seed=0))
    for other in (
        make_masks(spec, torch.tensor([4]), 64, seed=1),
        make_masks(spec, torch.tensor([5]), 64, seed=0),
        make_masks(spec, torch.tensor([4 + 2**32]), 64, seed=0),  # high index bits count
        make_masks(spec, torch.tensor([4]), 64, seed=2**32),  # high seed bits count
    ):
        assert not torch.equal(base[0], other[0])


@pytest.mark.parametrize("spec", EVERY_SPEC, ids=spec_id)
def test_masks_live_on_the_index_device(spec):
    index = torch.arange(2, device="cpu")
    assert make_masks(spec, index, 32).device == index.device


@pytest.mark.gpu
@pytest.mark.parametrize("spec", EVERY_SPEC, ids=spec_id)
def test_cuda_draws_the_same_masks_as_cpu(spec):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    index = torch.arange(64) * 7919
    on_cpu = make_masks(spec, index, 128, seed=5)
    on_cuda = make_masks(spec, index.cuda(), 128, seed=5)
    assert on_cuda.device.type == "cuda"
    assert torch.equal(on_cpu, on_cuda.cpu())
    assert mask_hash(on_cpu) == mask_hash(on_cuda)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "donut"}, "kind"),
        ({"kind": "center", "side": 0.0}, "side"),
        ({"kind": "center", "side": 1.5}, "side"),
        ({"kind": "random_pixels", "fraction": -0.1}, "fraction"),
        ({"kind": "random_square", "min_side": 0.0}, "min_side"),
        ({"kind": "random_square", "max_side": 2.0}, "max_side"),
        ({"kind": "random_square", "min_side": 0.6, "max_side": 0.5}, "min_side"),
        ({"kind": "free_form", "preset": "huge"}, "preset"),
        ({"kind": "center", "side": "half"}, "side"),
        ({"kind": "center", "sides": 0.5}, "sides"),
        ("diamond", "kind"),
    ],
)
def test_bad_specs_raise_naming_the_field(spec, field):
    with pytest.raises(ValueError, match=field):
        as_mask_spec(spec)


def test_bad_index_and_size_raise():
    with pytest.raises(ValueError, match="int64"):
        make_masks("center", torch.arange(3, dtype=torch.int32), 32)
    with pytest.raises(ValueError, match="index"):
        make_masks("center", torch.zeros(2, 2, dtype=torch.int64), 32)
    with pytest.raises(ValueError, match="size"):
        make_masks("center", torch.arange(3), (0, 32))


def test_as_mask_spec_accepts_specs_dicts_and_kind_names():
    spec = MaskSpec("random_square", min_side=0.25)
    assert as_mask_spec(spec) is spec
    assert as_mask_spec({"kind": "random_square", "min_side": 0.25}) == spec
    assert as_mask_spec("left") == MaskSpec("left")
    assert set(FREE_FORM_PRESETS) == {"thin", "medium", "thick"}
    with pytest.raises(TypeError, match="int"):
        as_mask_spec(3)


def test_mask_hash_tells_equal_masks_from_different_ones():
    masks = make_masks("random_pixels", torch.arange(3), 32)
    same = masks.clone()
    flipped = masks.clone()
    flipped[1, 0, 5, 7] = 1 - flipped[1, 0, 5, 7]
    assert mask_hash(masks) == mask_hash(same) == mask_hash(masks.bool())
    assert mask_hash(masks) != mask_hash(flipped)
    assert mask_hash(masks) != mask_hash(masks.view(3, 1, 16, 64))
    assert len(mask_hash(masks)) == 64
    with pytest.raises(ValueError, match="0 .known. or 1 .hole."):
        mask_hash(masks * 0.5)


def test_mixture_gives_each_sample_one_components_mask():
    components = [{"kind": "center", "side": 0.5}, "left", {"kind": "random_square"}]
    spec = as_mask_spec({"kind": "mixture", "components": components})
    index = torch.arange(60)
    mixed = make_masks(spec, index, 16, seed=3)
    each = [make_masks(c, index, 16, seed=3) for c in components]
    chosen = []
    for row in range(60):
        matches = [k for k, m in enumerate(each) if torch.equal(m[row], mixed[row])]
        assert matches, f"sample {row} got none of the components' masks"
        chosen.append(matches[0])
    assert set(chosen) == {0, 1, 2}
    alone = make_masks(spec, index[7:8], 16, seed=3)
    assert torch.equal(alone[0], mixed[7])


def test_mixture_needs_components_and_no_nesting():
    with pytest.raises(ValueError, match="components are for kind 'mixture' only"):
        as_mask_spec({"kind": "mixture"})
    with pytest.raises(ValueError, match="components are for kind 'mixture' only"):
        as_mask_spec({"kind": "center", "components": ["left"]})
    with pytest.raises(ValueError, match="must not be mixtures"):
        as_mask_spec(
            {"kind": "mixture", "components": [{"kind": "mixture", "components": ["left"]}]}
        )
