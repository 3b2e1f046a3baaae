"""Deterministic hole masks for training and evaluation: ``1 = hole``, ``(B,1,H,W)`` float.

A sample's mask depends only on ``(seed, index, spec, size)``: never on its batch
neighbours, the batch order or the device. Randomness comes from a counter-based hash
(a 32-bit xorshift-multiply finaliser) evaluated in int64 torch arithmetic and keyed by
``(seed, index, stream, element)``; every later step (squares, strokes) is exact integer
arithmetic too, so CPU and CUDA draw bit-identical masks. No ``torch.Generator`` is used:
its streams differ across devices and batch compositions.

Kinds (sizes are fractions of the shorter image side ``S``; "round" is round-half-up):

- ``center``: a centred square of side ``round(side * S)`` (0.5 -> a quarter of a square
  image, as in Yeh et al. 2017).
- ``left`` / ``right``: the left / right ``W // 2`` columns.
- ``random_pixels``: each pixel is a hole with probability ``fraction``.
- ``random_square``: side uniform over the integers ``[round(min_side*S), round(max_side*S)]``,
  position uniform over all placements fully inside the image.
- ``mixture``: each sample draws one of ``components`` (uniformly, keyed by its index like every
  other draw) and gets that component's mask, e.g. centre squares and half faces in one run.
- ``free_form``: LaMa-style brush strokes (Suvorov et al. 2022, ``make_random_irregular_mask``):
  each stroke starts at a uniform pixel and walks ``1..max_segments`` straight segments of
  uniform integer length, turning by up to +-90 degrees between segments, vertices clamped
  to the image, drawn with a round brush of uniform integer width; see ``FREE_FORM_PRESETS``.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

MaskKind = Literal[
    "center", "left", "right", "random_pixels", "random_square", "free_form", "mixture"
]
StrokePreset = Literal["thin", "medium", "thick"]

_MASK32 = 0xFFFFFFFF
_GOLDEN32 = 0x9E3779B9
_SALT = 0x6D61736B  # "mask": keeps these streams apart from any other use of the same hash

# Streams: one per random quantity, so changing one draw never shifts another.
_STREAM_PIXEL = 1
_STREAM_SQUARE_SIDE = 2
_STREAM_SQUARE_TOP = 3
_STREAM_SQUARE_LEFT = 4
_STREAM_N_STROKES = 5
_STREAM_N_SEGMENTS = 6
_STREAM_WIDTH = 7
_STREAM_START_X = 8
_STREAM_START_Y = 9
_STREAM_DIRECTION = 10
_STREAM_TURN = 11
_STREAM_LENGTH = 12
_STREAM_COMPONENT = 13

# Stroke directions: N_DIRECTIONS unit vectors in fixed point (x 2**_DIRECTION_BITS), built
# once on the host so no device ever evaluates a transcendental function.
_N_DIRECTIONS = 64
_DIRECTION_BITS = 10
_MAX_TURN = _N_DIRECTIONS // 4  # +-90 degrees between consecutive segments
_DIRECTION_X = tuple(
    round(math.cos(2 * math.pi * k / _N_DIRECTIONS) * 2**_DIRECTION_BITS)
    for k in range(_N_DIRECTIONS)
)
_DIRECTION_Y = tuple(
    round(math.sin(2 * math.pi * k / _N_DIRECTIONS) * 2**_DIRECTION_BITS)
    for k in range(_N_DIRECTIONS)
)

_UNBOUNDED = 2**30  # stands for +-infinity in int32 column spans


@dataclass(frozen=True)
class StrokeSettings:
    """Free-form brush settings; lengths and widths are fractions of the shorter image side."""

    min_strokes: int  # strokes per mask, uniform over [min_strokes, max_strokes]
    max_strokes: int
    max_segments: int  # segments per stroke, uniform over [1, max_segments]
    min_length: float  # segment length, uniform over the integer pixels in between
    max_length: float
    min_width: float  # brush diameter per stroke, uniform over the integer pixels in between
    max_width: float


# LaMa's 256 px eval generators (thin: 4-50 strokes, brush 5-14 px, segments 10-49 px;
# medium: 4-5 strokes, 5-54, 10-109; thick: 1-5 strokes, 5-104, 10-209; 1-5 segments each)
# as fractions of the side, with stroke counts and widths narrowed so that the mean hole
# area lands mid-target. Measured over 256 masks (seed 0, indices 0-255), mean hole area
# at 64 / 128 px and its 5th-95th percentiles at 128 px:
#   thin     9.7 % / 10.0 %   ( 5-14 %)      target  5-15 %
#   medium  23.3 % / 23.0 %   (14-33 %)      target 15-30 %
#   thick   35.2 % / 33.4 %   (23-47 %)      target 25-45 %
FREE_FORM_PRESETS: dict[str, StrokeSettings] = {
    "thin": StrokeSettings(
        min_strokes=6,
        max_strokes=12,
        max_segments=5,
        min_length=0.04,
        max_length=0.2,
        min_width=0.02,
        max_width=0.05,
    ),
    "medium": StrokeSettings(
        min_strokes=5,
        max_strokes=7,
        max_segments=4,
        min_length=0.06,
        max_length=0.25,
        min_width=0.07,
        max_width=0.15,
    ),
    "thick": StrokeSettings(
        min_strokes=5,
        max_strokes=6,
        max_segments=4,
        min_length=0.08,
        max_length=0.35,
        min_width=0.12,
        max_width=0.18,
    ),
}


@dataclass(frozen=True)
class MaskSpec:
    """What masks to draw; sizes are fractions of the image side."""

    kind: MaskKind = "center"
    side: float = 0.5  # center: side of the square
    fraction: float = 0.8  # random_pixels: probability a pixel is missing
    min_side: float = 0.5  # random_square: smallest side
    max_side: float = 0.5  # random_square: largest side
    preset: StrokePreset = "medium"  # free_form: stroke settings, see FREE_FORM_PRESETS
    components: tuple[MaskSpec, ...] = ()  # mixture: the specs drawn from, equally likely

    def __post_init__(self) -> None:
        if self.kind not in get_args(MaskKind):
            raise ValueError(f"kind must be one of {get_args(MaskKind)}, got {self.kind!r}")
        object.__setattr__(self, "components", tuple(as_mask_spec(c) for c in self.components))
        if (self.kind == "mixture") != bool(self.components):
            raise ValueError(
                f"components are for kind 'mixture' only and it needs at least one; got kind "
                f"{self.kind!r} with {len(self.components)} components"
            )
        if any(c.kind == "mixture" for c in self.components):
            raise ValueError("a mixture's components must not be mixtures themselves")
        if self.preset not in FREE_FORM_PRESETS:
            raise ValueError(
                f"preset must be one of {tuple(FREE_FORM_PRESETS)}, got {self.preset!r}"
            )
        for name in ("side", "fraction", "min_side", "max_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
        if self.min_side > self.max_side:
            raise ValueError(
                f"min_side must be <= max_side, got min_side={self.min_side!r} > max_side={self.max_side!r}"
            )


def as_mask_spec(spec: MaskSpec | Mapping[str, object] | str) -> MaskSpec:
    """A ``MaskSpec`` from itself, a config dict of its fields, or a kind name."""
    if isinstance(spec, MaskSpec):
        return spec
    if isinstance(spec, str):
        return MaskSpec(kind=spec)  # type: ignore[arg-type]
    if isinstance(spec, Mapping):
        known = {f.name for f in fields(MaskSpec)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(
                f"unknown mask spec fields {unknown}; expected some of {sorted(known)}"
            )
        return MaskSpec(**spec)  # type: ignore[arg-type]
    raise TypeError(f"mask spec must be a MaskSpec, dict or kind name, got {type(spec).__name__}")


def make_masks(
    spec: MaskSpec | Mapping[str, object] | str,
    index: Tensor,
    size: int | tuple[int, int],
    seed: int = 0,
) -> Tensor:
    """(B,1,H,W) float masks, 1 = hole, on index.device; deterministic in (seed, index)."""
    spec = as_mask_spec(spec)
    height, width = _as_size(size)
    if index.ndim != 1 or index.dtype != torch.int64:
        raise ValueError(
            f"index must be a (B,) int64 tensor, got {tuple(index.shape)} {index.dtype}"
        )
    key = _sample_key(seed, index)  # (B,)
    if spec.kind == "center":
        hole = _center(index.shape[0], height, width, spec.side, index.device)
    elif spec.kind in ("left", "right"):
        hole = _half(index.shape[0], height, width, spec.kind, index.device)
    elif spec.kind == "random_pixels":
        hole = _random_pixels(key, height, width, spec.fraction)
    elif spec.kind == "random_square":
        hole = _random_square(key, height, width, spec.min_side, spec.max_side)
    elif spec.kind == "mixture":
        choice = _randint(_draws(key, _STREAM_COMPONENT, 1)[:, 0], 0, len(spec.components) - 1)
        hole = torch.zeros(index.shape[0], height, width, dtype=torch.bool, device=index.device)
        for number, component in enumerate(spec.components):
            chosen = choice == number  # (B,)
            if bool(chosen.any()):
                drawn = make_masks(component, index[chosen], (height, width), seed)[:, 0] > 0.5
                hole[chosen] = drawn
    else:
        hole = _free_form(key, height, width, FREE_FORM_PRESETS[spec.preset])
    return hole.unsqueeze(1).float()


def mask_hash(masks: Tensor) -> str:
    """sha256 hex of the masks as packed bits (CPU copy), for checking that two runs saw identical masks."""
    hole = masks.detach().cpu()
    if not bool(((hole == 0) | (hole == 1)).all()):
        raise ValueError("mask values must be 0 (known) or 1 (hole)")
    digest = hashlib.sha256(repr(tuple(hole.shape)).encode())
    digest.update(np.packbits(hole.numpy().astype(bool).ravel()).tobytes())
    return digest.hexdigest()


def _as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return int(height), int(width)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


# ----------------------------------------------------------------------------- hashing
def _mix32(x):
    """A bijection of [0, 2**32) with good avalanche (T. Mueller's integer hash); int or int64 tensor.

    The multiplier is below 2**31, so with x < 2**32 no product leaves int64.
    """
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    return (x >> 16) ^ x


def _combine(key, value):
    """Hash of (key, value) for 32-bit key and value; ints or int64 tensors."""
    return _mix32(key ^ _mix32((value + _GOLDEN32) & _MASK32))


def _sample_key(seed: int, index: Tensor) -> Tensor:
    """(B,) per-sample 32-bit keys from the seed and the 64-bit dataset index."""
    seed_key = _combine(_combine(_SALT, seed & _MASK32), (seed >> 32) & _MASK32)
    key = _combine(torch.full_like(index, seed_key), index & _MASK32)
    return _combine(key, (index >> 32) & _MASK32)


def _draws(key: Tensor, stream: int, n: int) -> Tensor:
    """(B, n) independent 32-bit draws: element e of ``stream`` for each sample key (B,)."""
    stream_key = _combine(key, stream).unsqueeze(1)
    element = torch.arange(n, device=key.device, dtype=torch.int64)
    return _combine(stream_key, element)


def _randint(draw: Tensor, low, high) -> Tensor:
    """Integers uniform over [low, high] (ints or tensors, high - low < 2**31) from 32-bit draws."""
    return low + ((draw * (high - low + 1)) >> 32)


# ----------------------------------------------------------------------------- kinds
def _center(batch: int, height: int, width: int, side: float, device: torch.device) -> Tensor:
    length = max(1, _round_half_up(side * min(height, width)))
    top, left = (height - length) // 2, (width - length) // 2
    hole = torch.zeros(batch, height, width, dtype=torch.bool, device=device)
    hole[:, top : top + length, left : left + length] = True
    return hole


def _half(batch: int, height: int, width: int, kind: str, device: torch.device) -> Tensor:
    hole = torch.zeros(batch, height, width, dtype=torch.bool, device=device)
    if kind == "left":
        hole[:, :, : width // 2] = True
    else:
        hole[:, :, width - width // 2 :] = True
    return hole


def _random_pixels(key: Tensor, height: int, width: int, fraction: float) -> Tensor:
    threshold = _round_half_up(fraction * 2**32)
    return (_draws(key, _STREAM_PIXEL, height * width) < threshold).view(-1, height, width)


def _random_square(
    key: Tensor, height: int, width: int, min_side: float, max_side: float
) -> Tensor:
    short = min(height, width)
    low = max(1, _round_half_up(min_side * short))
    high = max(low, _round_half_up(max_side * short))
    length = _randint(_draws(key, _STREAM_SQUARE_SIDE, 1), low, high)  # (B, 1)
    top = _randint(_draws(key, _STREAM_SQUARE_TOP, 1), 0, height - length)
    left = _randint(_draws(key, _STREAM_SQUARE_LEFT, 1), 0, width - length)
    rows = torch.arange(height, device=key.device).view(1, height, 1)
    cols = torch.arange(width, device=key.device).view(1, 1, width)
    inside_rows = (rows >= top.unsqueeze(2)) & (rows < (top + length).unsqueeze(2))
    inside_cols = (cols >= left.unsqueeze(2)) & (cols < (left + length).unsqueeze(2))
    return inside_rows & inside_cols  # (B, H, W)


def _free_form(key: Tensor, height: int, width: int, settings: StrokeSettings) -> Tensor:
    short = min(height, width)
    n_strokes, n_segments = settings.max_strokes, settings.max_segments
    device = key.device

    def pixels(fraction: float) -> int:
        return max(1, _round_half_up(fraction * short))

    strokes_used = _randint(
        _draws(key, _STREAM_N_STROKES, 1), settings.min_strokes, settings.max_strokes
    )  # (B, 1)
    stroke_on = torch.arange(n_strokes, device=device) < strokes_used  # (B, K)
    segments_used = _randint(_draws(key, _STREAM_N_SEGMENTS, n_strokes), 1, n_segments)
    segment_on = torch.arange(n_segments, device=device) < segments_used.unsqueeze(2)
    segment_on = segment_on & stroke_on.unsqueeze(2)  # (B, K, M)
    brush = _randint(
        _draws(key, _STREAM_WIDTH, n_strokes),
        pixels(settings.min_width),
        pixels(settings.max_width),
    )  # (B, K) diameter in pixels

    direction_x, direction_y = _direction_table(device)
    direction = _randint(_draws(key, _STREAM_DIRECTION, n_strokes), 0, _N_DIRECTIONS - 1)
    turns = _randint(_draws(key, _STREAM_TURN, n_strokes * n_segments), -_MAX_TURN, _MAX_TURN).view(
        -1, n_strokes, n_segments
    )
    lengths = _randint(
        _draws(key, _STREAM_LENGTH, n_strokes * n_segments),
        pixels(settings.min_length),
        pixels(settings.max_length),
    ).view(-1, n_strokes, n_segments)
    x = _randint(_draws(key, _STREAM_START_X, n_strokes), 0, width - 1)  # (B, K)
    y = _randint(_draws(key, _STREAM_START_Y, n_strokes), 0, height - 1)
    vertices_x, vertices_y = [x], [y]
    for segment in range(n_segments):
        if segment > 0:
            direction = (direction + turns[:, :, segment]) % _N_DIRECTIONS
        step = lengths[:, :, segment]
        x = (x + _fixed_point_round(step * direction_x[direction])).clamp(0, width - 1)
        y = (y + _fixed_point_round(step * direction_y[direction])).clamp(0, height - 1)
        vertices_x.append(x)
        vertices_y.append(y)
    vx = torch.stack(vertices_x, dim=2)  # (B, K, M + 1)
    vy = torch.stack(vertices_y, dim=2)
    brush = brush.unsqueeze(2).expand(-1, -1, n_segments)
    first, last = _stroke_spans(
        start_x=vx[:, :, :-1].flatten(1),
        start_y=vy[:, :, :-1].flatten(1),
        end_x=vx[:, :, 1:].flatten(1),
        end_y=vy[:, :, 1:].flatten(1),
        brush=brush.flatten(1),
        segment_on=segment_on.flatten(1),
        height=height,
    )
    return _render_spans(first, last, width)


@functools.cache
def _direction_table(device: torch.device) -> tuple[Tensor, Tensor]:
    """The fixed-point unit vectors on ``device``, copied there once (a copy waits for the device)."""
    return (
        torch.tensor(_DIRECTION_X, device=device),
        torch.tensor(_DIRECTION_Y, device=device),
    )


def _fixed_point_round(x: Tensor) -> Tensor:
    return torch.div(x + 2 ** (_DIRECTION_BITS - 1), 2**_DIRECTION_BITS, rounding_mode="floor")


def _isqrt(n: Tensor) -> Tensor:
    """floor(sqrt(n)) exactly for integer n in [0, 2**52) (and (root+1)^2 representable)."""
    root = torch.sqrt(n.double()).floor().to(n.dtype)
    root = root - (root * root > n).to(n.dtype)
    return root + ((root + 1) * (root + 1) <= n).to(n.dtype)


def _floor_div(a: Tensor, b: Tensor) -> Tensor:
    return torch.div(a, b, rounding_mode="floor")


def _solve_linear(coef: Tensor, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """Integer span [first, last] of u with low <= coef * u <= high (empty when first > last)."""
    safe = torch.where(coef == 0, 1, coef)
    lower, upper = torch.where(coef > 0, low, high), torch.where(coef > 0, high, low)
    first, last = -_floor_div(-lower, safe), _floor_div(upper, safe)
    always = (low <= 0) & (high >= 0)  # coef == 0: every u or none
    first = torch.where(coef == 0, torch.where(always, -_UNBOUNDED, _UNBOUNDED), first)
    last = torch.where(coef == 0, torch.where(always, _UNBOUNDED, -_UNBOUNDED), last)
    return first, last


def _disc_span(center_x: Tensor, from_center_y: Tensor, brush_sq: Tensor):
    """Span of columns x with 4 ((x - cx)^2 + dy^2) <= brush^2, per row."""
    room = brush_sq - 4 * from_center_y * from_center_y
    half = _isqrt(room.clamp(min=0)) // 2
    inside = room >= 0
    return (
        torch.where(inside, center_x - half, _UNBOUNDED),
        torch.where(inside, center_x + half, -_UNBOUNDED),
    )


def _stroke_spans(
    start_x: Tensor,
    start_y: Tensor,
    end_x: Tensor,
    end_y: Tensor,
    brush: Tensor,
    segment_on: Tensor,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Per row, the columns [first, last] covered by each brushed segment; all inputs (B, N).

    A pixel P is covered when it lies within brush/2 of either end point, or projects onto
    the segment AB with |cross(P - A, B - A)| <= brush/2 * |B - A|. The three regions are
    convex and so is their union (a capsule), so each row meets it in one span of columns,
    found here in exact integer arithmetic: every device covers the same pixels.
    Returns two (B, N, H) int32 tensors; first > last where a row misses the segment.
    """
    dx, dy = end_x - start_x, end_y - start_y
    length_sq = dx * dx + dy * dy  # (B, N)
    brush_sq = torch.where(segment_on, brush * brush, -1)
    # 2|cross| <= isqrt(brush^2 |AB|^2) <=> |cross| <= brush/2 |AB|, as 2|cross| is integral.
    has_slab = segment_on & (length_sq > 0)
    cross_bound = torch.where(has_slab, _isqrt(brush_sq.clamp(min=0) * length_sq), -1)

    # Per-row quantities stay below 4 S^2, so int32 is exact for S up to 16k pixels.
    ax, ay, bx, by, dx, dy, length_sq, brush_sq, cross_bound = (
        t.to(torch.int32).unsqueeze(2)  # (B, N, 1)
        for t in (start_x, start_y, end_x, end_y, dx, dy, length_sq, brush_sq, cross_bound)
    )
    rows = torch.arange(height, device=start_x.device, dtype=torch.int32).view(1, 1, height)
    from_a_y = rows - ay  # (B, N, H)
    along_first, along_last = _solve_linear(dx, -from_a_y * dy, length_sq - from_a_y * dy)
    cross_first, cross_last = _solve_linear(
        2 * dy, 2 * from_a_y * dx - cross_bound, 2 * from_a_y * dx + cross_bound
    )
    slab_first = ax + torch.maximum(along_first, cross_first)
    slab_last = ax + torch.minimum(along_last, cross_last)
    slab_empty = slab_first > slab_last
    slab_first = torch.where(slab_empty, _UNBOUNDED, slab_first)
    slab_last = torch.where(slab_empty, -_UNBOUNDED, slab_last)
    a_first, a_last = _disc_span(ax, from_a_y, brush_sq)
    b_first, b_last = _disc_span(bx, rows - by, brush_sq)
    first = torch.minimum(torch.minimum(a_first, b_first), slab_first)
    last = torch.maximum(torch.maximum(a_last, b_last), slab_last)
    return first, last


def _render_spans(first: Tensor, last: Tensor, width: int) -> Tensor:
    """(B, H, W) pixels inside any span; first, last (B, N, H).

    Column x is covered when more spans have started (first <= x) than ended (last < x);
    both counts come from binary search in the sorted span ends, O(B H W log N).
    """
    empty = first > last
    first = torch.where(empty, _UNBOUNDED, first).sort(dim=1).values.transpose(1, 2).contiguous()
    last = torch.where(empty, _UNBOUNDED, last).sort(dim=1).values.transpose(1, 2).contiguous()
    cols = torch.arange(width, device=first.device, dtype=first.dtype)
    cols = cols.expand(*first.shape[:2], width).contiguous()
    started = torch.searchsorted(first, cols, right=True)  # (B, H, W)
    ended = torch.searchsorted(last, cols, right=False)
    return started > ended
