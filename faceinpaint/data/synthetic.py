"""Procedural faces with their exact 68 iBUG landmarks: the embedded default dataset.

The project ships no photographs, so every config, the demo and the tests fall
back on these faces.  Each face is built in a *canonical frame* (origin between
the eye centres, unit = distance between the eye centres, y pointing down) as
polylines; the same polylines give both the 68 landmarks and the drawn shapes,
so every landmark lies on what is drawn.  A mild yaw moves points sideways by
their depth on a head-shaped surface (the far side gets squashed), then a
similarity (scale, roll, shift) places the face in the image.

Drawing happens at ``SUPERSAMPLE`` times the resolution with PIL polygons and
is box-filtered down; smooth multiplicative shading (head lighting, eye sockets,
nose and lip shadows, cheek colour) and faint pixel noise follow at the output
resolution.  Randomness comes only from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 3  # drawing resolution / output resolution
MIN_SIZE = 16  # smallest output side in pixels

_SKIN_TONES = np.array(
    [
        (246, 212, 190),
        (226, 180, 148),
        (196, 142, 104),
        (150, 100, 68),
        (100, 66, 46),
        (72, 48, 36),
    ],
    dtype=np.float64,
)
_HAIR_COLOURS = np.array(
    [
        (22, 18, 18),
        (48, 34, 26),
        (92, 62, 40),
        (140, 100, 64),
        (206, 170, 110),
        (132, 58, 30),
        (160, 158, 154),
    ],
    dtype=np.float64,
)
_IRIS_COLOURS = np.array(
    [(92, 58, 34), (48, 30, 20), (118, 92, 48), (78, 108, 68), (72, 112, 160), (112, 122, 132)],
    dtype=np.float64,
)


@dataclass(frozen=True)
class _Face:
    """Everything random about one face; lengths in canonical units unless noted."""

    # placement (pixels of the output image, radians)
    scale: float  # pixels per canonical unit
    roll: float
    yaw: float
    centre: tuple[float, float]  # the point between the eye centres, pixel centres at integers
    # head
    width: float  # half width at the cheekbones
    jaw_top: float  # y where the jaw outline (point 0) starts
    chin: float  # y of the chin
    squareness: float  # superellipse exponent of the jaw, 2 = oval
    skull_top: float  # y of the top of the skull
    # eyes
    eye_width: float
    lid_up: float
    lid_down: float
    eye_tilt: float  # outer corner raised by this much
    iris_radius: float
    gaze: tuple[float, float]
    # brows
    brow_height: float  # above the eye line
    brow_thickness: float
    brow_arch: float
    brow_inner: float  # x of the inner end
    brow_outer: float
    # nose
    nose_tip: float  # y of point 30
    nose_base: float  # y of points 31/35
    nose_half_width: float
    # mouth
    mouth_y: float
    mouth_half_width: float
    upper_lip: float
    lower_lip: float
    mouth_open: float
    smile: float
    # hair: 0 short, 1 long, 2 bob
    hair_style: int
    hairline: float  # y of the hairline at the middle
    temple: float  # y where the hair meets the face outline
    parting: float  # sideways lean of the fringe
    hair_volume: float
    hair_phases: tuple[float, float, float]  # of the streak texture
    # light
    light: tuple[float, float, float]
    ambient: float
    socket_shadow: float
    blush: float
    # colours (RGB 0-255)
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    brows: tuple[float, float, float]
    clothes: tuple[float, float, float]
    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    background_angle: float  # direction of the background gradient


def _colour(
    rng: np.random.Generator, palette: np.ndarray, jitter: float, skew: float = 1.0
) -> np.ndarray:
    """A colour between two neighbouring palette entries, each channel jittered by +-jitter.

    ``skew`` > 1 favours the first entries.
    """
    t = rng.uniform() ** skew * (len(palette) - 1.0)
    low = int(np.floor(t))
    high = min(low + 1, len(palette) - 1)
    mixed = palette[low] + (t - low) * (palette[high] - palette[low])
    return np.clip(mixed + rng.uniform(-jitter, jitter, 3), 0.0, 255.0)


def _tuple3(x: np.ndarray) -> tuple[float, float, float]:
    return (float(x[0]), float(x[1]), float(x[2]))


def _sample_face(rng: np.random.Generator, size: int) -> _Face:
    skin = _colour(rng, _SKIN_TONES, 8.0, skew=1.5)
    hair = _colour(rng, _HAIR_COLOURS, 10.0)
    lips = 0.85 * skin * np.array([0.88, 0.62, 0.64]) + 0.15 * np.array([150.0, 60.0, 70.0])
    if rng.uniform() < 0.12:  # lipstick
        lips = np.array([150.0, 24.0, 44.0]) + rng.uniform(-20.0, 20.0, 3)
    brows = 0.7 * np.minimum(hair, skin * 0.7) + 0.3 * skin * 0.55
    grey = rng.uniform(40.0, 220.0)
    first = grey + rng.uniform(0.2, 0.8) * (rng.uniform(20.0, 235.0, 3) - grey)
    second = (
        first
        if rng.uniform() < 0.4
        else grey + rng.uniform(0.2, 0.8) * (rng.uniform(20.0, 235.0, 3) - grey)
    )
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.1), 1.0])
    mouth_y = rng.uniform(1.12, 1.24)
    nose_base = rng.uniform(0.74, 0.86)
    mouth_open = rng.uniform(0.02, 0.1) if rng.uniform() < 0.35 else 0.0
    return _Face(
        scale=size * rng.uniform(0.18, 0.235),
        roll=float(np.clip(rng.normal(0.0, 0.12), -0.35, 0.35)),
        yaw=rng.uniform(-0.35, 0.35),
        # relative to the image edges, so a face at another size is the same face
        centre=(
            size * (0.5 + rng.uniform(-0.05, 0.05)) - 0.5,
            size * (0.43 + rng.uniform(-0.04, 0.04)) - 0.5,
        ),
        width=rng.uniform(1.08, 1.25),
        jaw_top=rng.uniform(-0.1, 0.05),
        chin=rng.uniform(1.85, 2.05),
        squareness=rng.uniform(2.0, 2.8),
        skull_top=rng.uniform(-2.15, -1.95),
        eye_width=rng.uniform(0.36, 0.44),
        lid_up=rng.uniform(0.1, 0.14),
        lid_down=rng.uniform(0.05, 0.08),
        eye_tilt=rng.uniform(-0.02, 0.05),
        iris_radius=rng.uniform(0.095, 0.11),
        gaze=(rng.uniform(-0.04, 0.04), rng.uniform(-0.015, 0.015)),
        brow_height=rng.uniform(0.3, 0.4),
        brow_thickness=rng.uniform(0.06, 0.11),
        brow_arch=rng.uniform(0.04, 0.1),
        brow_inner=rng.uniform(0.12, 0.2),
        brow_outer=rng.uniform(0.85, 0.98),
        nose_tip=nose_base - rng.uniform(0.06, 0.1),
        nose_base=nose_base,
        nose_half_width=rng.uniform(0.19, 0.26),
        mouth_y=mouth_y,
        mouth_half_width=rng.uniform(0.36, 0.48),
        upper_lip=rng.uniform(0.07, 0.11),
        lower_lip=rng.uniform(0.09, 0.14),
        mouth_open=mouth_open,
        smile=rng.uniform(-0.02, 0.08),
        hair_style=int(rng.integers(0, 3)),
        hairline=rng.uniform(-1.55, -1.0),
        temple=rng.uniform(-0.5, -0.1),
        parting=rng.uniform(-0.25, 0.25),
        hair_volume=rng.uniform(0.1, 0.3),
        hair_phases=_tuple3(rng.uniform(0.0, 2.0 * np.pi, 3)),
        light=_tuple3(light / np.linalg.norm(light)),
        ambient=rng.uniform(0.45, 0.65),
        socket_shadow=rng.uniform(0.1, 0.22),
        blush=rng.uniform(0.0, 0.6),
        skin=_tuple3(skin),
        hair=_tuple3(hair),
        iris=_tuple3(_colour(rng, _IRIS_COLOURS, 10.0)),
        lips=_tuple3(np.clip(lips, 0.0, 255.0)),
        brows=_tuple3(brows),
        clothes=_tuple3(rng.uniform(15.0, 240.0, 3)),
        background=(_tuple3(first), _tuple3(second)),
        background_angle=rng.uniform(0.0, 2.0 * np.pi),
    )


# ----------------------------------------------------------------------------- geometry


def _curve(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return np.stack([xs, ys], axis=-1)  # (N, 2)


def _resample_by_length(curve: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced along the polyline ``curve`` (N,2), ends included."""
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    target = np.linspace(0.0, arc[-1], count)
    return _curve(np.interp(target, arc, curve[:, 0]), np.interp(target, arc, curve[:, 1]))


def _jaw(f: _Face, n: int = 64) -> np.ndarray:
    """Lower face outline from the image-left ear over the chin to the image-right ear (N,2)."""
    theta = np.linspace(np.pi, 0.0, n)
    power = 2.0 / f.squareness
    c, s = np.cos(theta), np.sin(theta)
    xs = f.width * np.sign(c) * np.abs(c) ** power
    ys = f.jaw_top + (f.chin - f.jaw_top) * np.abs(s) ** power
    return _curve(xs, ys)


def _skull(f: _Face, grow: float = 0.0, n: int = 48) -> np.ndarray:
    """Upper head outline from the image-right side over the top to the image-left side (N,2)."""
    theta = np.linspace(0.0, np.pi, n)
    xs = (f.width + grow) * np.cos(theta)
    ys = f.jaw_top + (f.skull_top - grow - f.jaw_top) * np.sin(theta)
    return _curve(xs, ys)


def _eye(f: _Face, side: int, n: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid curves of one eye, both from image-left corner to image-right corner.

    ``side`` is -1 for the image-left eye (subject's right), +1 for the other.
    """
    t = np.linspace(0.0, 1.0, n)
    left = side * 0.5 - f.eye_width / 2
    xs = left + f.eye_width * t
    outer = t if side > 0 else 1.0 - t  # 1 at the outer corner
    corner_y = -f.eye_tilt * (outer - 0.5)
    # the upper lid peaks nearer the inner corner, the lower lid nearer the outer one
    upper_bump = np.sin(np.pi * t) ** 0.8 * (1.0 + 0.25 * (0.5 - outer))
    lower_bump = np.sin(np.pi * t) ** 1.2 * (1.0 - 0.2 * (0.5 - outer))
    return _curve(xs, corner_y - f.lid_up * upper_bump), _curve(
        xs, corner_y + f.lid_down * lower_bump
    )


def _between(curve: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.interp(x, curve[:, 0], curve[:, 1])


def _iris(f: _Face, side: int, upper: np.ndarray, lower: np.ndarray, radius: float) -> np.ndarray:
    """A circle in the eye, clipped between the lids (N,2)."""
    theta = np.linspace(0.0, 2.0 * np.pi, 28, endpoint=False)
    cx, cy = side * 0.5 + f.gaze[0], f.gaze[1] - 0.01
    xs = np.clip(cx + radius * np.cos(theta), upper[0, 0], upper[-1, 0])
    ys = cy + radius * np.sin(theta)
    ys = np.clip(ys, _between(upper, xs), _between(lower, xs))
    return _curve(xs, ys)


def _hair_back(f: _Face) -> np.ndarray:
    """Hair behind the head: the grown skull, then both sides down to the style's length (N,2)."""
    bottom, flare = {0: (0.3, 0.0), 1: (3.2, 0.35), 2: (1.3, 0.12)}[f.hair_style]
    side = f.width + f.hair_volume
    s = np.linspace(0.0, 1.0, 12)
    # image-left side from the temple down, then the tip curling inwards
    xs = -side - flare * s**1.5
    ys = f.jaw_top + (bottom - f.jaw_top) * s
    curl = np.linspace(0.0, 0.5 * np.pi, 6)[1:]
    tip_x = xs[-1] + 0.35 * (1.0 - np.cos(curl))
    tip_y = bottom + 0.12 * np.sin(curl)
    left = np.concatenate([_curve(xs, ys), _curve(tip_x, tip_y), [[-0.3, f.jaw_top + 0.3]]])
    right = left[::-1] * [-1.0, 1.0]
    return np.concatenate([_skull(f, f.hair_volume), left, right])


def _brow(f: _Face, side: int, n: int = 9) -> np.ndarray:
    """Brow centre line from its image-left end to its image-right end (N,2)."""
    t = np.linspace(0.0, 1.0, n)
    inner_to_outer = t if side > 0 else 1.0 - t
    xs = side * (f.brow_inner + (f.brow_outer - f.brow_inner) * inner_to_outer)
    # arch peaks two thirds of the way out; the outer tail drops
    arch = np.sin(np.pi * np.clip(inner_to_outer / 1.3, 0.0, 1.0) ** 0.9)
    ys = -f.brow_height - f.brow_arch * arch + 0.05 * inner_to_outer**2
    return _curve(xs, ys)


def _thick(line: np.ndarray, half: np.ndarray) -> np.ndarray:
    """A polygon of varying half-thickness around a polyline (N,2) -> (2N,2)."""
    tangent = np.gradient(line, axis=0)
    normal = _curve(-tangent[:, 1], tangent[:, 0]) / np.linalg.norm(tangent, axis=1, keepdims=True)
    return np.concatenate([line + half[:, None] * normal, (line - half[:, None] * normal)[::-1]])


def _mouth(f: _Face, n: int = 41) -> dict[str, np.ndarray]:
    """Outer and inner lip curves, each from image-left to image-right (N,2)."""
    w = f.mouth_half_width
    xs = np.linspace(-w, w, n)
    r = xs / w
    lift = -f.smile * r**2  # smiling raises the corners
    bow = np.abs(r)
    outer_up = f.mouth_y - f.upper_lip * (1.0 - r**2) ** 0.6 * (
        1.0 - 0.35 * np.exp(-((bow / 0.18) ** 2))
    )
    outer_low = f.mouth_y + f.lower_lip * (1.0 - r**2) ** 0.7
    xi = np.linspace(-0.9 * w, 0.9 * w, n)
    ri = xi / (0.9 * w)
    gap = f.mouth_open * (1.0 - ri**2) ** 0.8
    inner_up = f.mouth_y - 0.5 * gap - 0.005 * (1.0 - ri**2) - f.smile * (xi / w) ** 2
    inner_low = f.mouth_y + 0.5 * gap - f.smile * (xi / w) ** 2
    return {
        "outer_up": _curve(xs, outer_up + lift),
        "outer_low": _curve(xs, outer_low + lift),
        "inner_up": _curve(xi, inner_up),
        "inner_low": _curve(xi, inner_low),
    }


def _nose_base(f: _Face, n: int = 13) -> np.ndarray:
    """Lower nose outline through points 31-35, image-left to image-right (N,2)."""
    xs = np.linspace(-f.nose_half_width, f.nose_half_width, n)
    r = xs / f.nose_half_width
    return _curve(xs, f.nose_base + 0.05 * (1.0 - r**2))


def _canonical_landmarks(f: _Face) -> np.ndarray:
    """The 68 points in the canonical frame, iBUG order (68,2)."""
    jaw = _resample_by_length(_jaw(f, 200), 17)
    brows = [_brow(f, side, 5) for side in (-1, 1)]
    bridge = _curve(np.zeros(4), np.linspace(-0.02, f.nose_tip, 4))
    nose = _nose_base(f, 5)
    eyes = []
    for side in (-1, 1):
        upper, lower = _eye(f, side, 4)  # samples at t = 0, 1/3, 2/3, 1
        eyes.append(np.stack([upper[0], upper[1], upper[2], upper[3], lower[2], lower[1]]))
    m = _mouth(f, 2001)  # 2000 steps: every fraction below is an exact sample

    def at(curve: str, fractions: tuple[float, ...]) -> np.ndarray:
        return m[curve][[round(frac * 2000) for frac in fractions]]

    outer = np.concatenate(
        [
            at("outer_up", (0.0, 0.19, 0.36, 0.5, 0.64, 0.81, 1.0)),  # 48-54
            at("outer_low", (0.81, 0.64, 0.5, 0.36, 0.19)),  # 55-59
        ]
    )
    inner = np.concatenate(
        [at("inner_up", (0.0, 0.3, 0.5, 0.7, 1.0)), at("inner_low", (0.7, 0.5, 0.3))]  # 60-67
    )
    return np.concatenate([jaw, *brows, bridge, nose, *eyes, outer, inner])


class _Placement:
    """Canonical frame -> output pixels: yaw by depth, then scale, roll and shift."""

    def __init__(self, f: _Face) -> None:
        self.f = f
        self.depth = 0.9 * f.width  # depth of the face surface at the midline
        cos, sin = np.cos(f.roll), np.sin(f.roll)
        self.rotation = f.scale * np.array([[cos, -sin], [sin, cos]])
        self.centre = np.array(f.centre)

    def surface_depth(self, u: np.ndarray) -> np.ndarray:
        """Parabolic profile: shallow enough at the sides that yaw never folds the outline over."""
        return self.depth * np.clip(1.0 - (u / self.f.width) ** 2, 0.0, 1.0)

    def __call__(
        self, points: np.ndarray, depth: float = 1.0, extra: float | np.ndarray = 0.0
    ) -> np.ndarray:
        """(N,2) canonical -> (N,2) pixels; ``depth`` scales the surface, ``extra`` sticks out."""
        u = points[:, 0]
        z = depth * self.surface_depth(u) + extra
        yawed = _curve(u * np.cos(self.f.yaw) + z * np.sin(self.f.yaw), points[:, 1])
        return yawed @ self.rotation.T + self.centre

    def to_canonical(self, xy: np.ndarray) -> np.ndarray:
        """Approximate inverse for shading: (..., 2) pixels -> (..., 2) canonical."""
        yawed = ((xy - self.centre) @ np.linalg.inv(self.rotation).T).astype(xy.dtype)
        u_yawed = yawed[..., 0]
        u = u_yawed / np.cos(self.f.yaw)
        for _ in range(4):
            u = (u_yawed - self.surface_depth(u) * np.sin(self.f.yaw)) / np.cos(self.f.yaw)
        return np.stack([u, yawed[..., 1]], axis=-1)


# ----------------------------------------------------------------------------- drawing


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> np.ndarray:
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return _curve(cx + rx * np.cos(theta), cy + ry * np.sin(theta))


def _rgba(colour: Sequence[float], factor: float = 1.0) -> tuple[int, int, int, int]:
    r, g, b = (min(255, max(0, round(c * factor))) for c in colour)
    return (r, g, b, 255)


def _draw_layer(f: _Face, size: int) -> tuple[Image.Image, Image.Image]:
    """The person (no background) at SUPERSAMPLE x resolution, transparent elsewhere, and its hair mask."""
    place = _Placement(f)
    hi = size * SUPERSAMPLE
    offset = (SUPERSAMPLE - 1) / 2.0  # output pixel centres at integers -> drawing pixel centres

    def pix(points: np.ndarray, depth: float = 1.0, extra: float | np.ndarray = 0.0) -> list[float]:
        """Canonical (N,2) -> flat [x0, y0, x1, ...] drawing coordinates."""
        xy = place(points, depth, extra) * SUPERSAMPLE + offset
        # snapped to a 1/64 px grid so that last-bit float differences between machines vanish
        return (np.round(xy * 64.0) / 64.0).ravel().tolist()

    px = place.f.scale * SUPERSAMPLE  # drawing pixels per canonical unit
    layer = Image.new("RGBA", (hi, hi), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    hair_mask = Image.new("L", (hi, hi), 0)
    draw_hair = ImageDraw.Draw(hair_mask)
    skin, hair = f.skin, f.hair
    grow = f.hair_volume

    # hair behind the head
    back = pix(_hair_back(f), depth=0.5)
    draw.polygon(back, fill=_rgba(hair, 0.8))
    draw_hair.polygon(back, fill=255)

    # neck and clothes
    neck = 0.55 * f.width
    draw.polygon(
        pix(
            np.array([[-neck, 0.8], [neck, 0.8], [neck * 1.1, 3.5], [-neck * 1.1, 3.5]]), depth=0.4
        ),
        fill=_rgba(skin, 0.78),
    )
    collar = f.chin + 0.45
    clothes = np.array(
        [[-neck - 0.05, collar], [-1.9, collar + 0.35], [-3.2, collar + 1.0], [-3.2, 6.0], [3.2, 6.0],
         [3.2, collar + 1.0], [1.9, collar + 0.35], [neck + 0.05, collar], [0.0, collar + 0.35]]
    )  # fmt: skip
    draw.polygon(pix(clothes, depth=0.0), fill=_rgba(f.clothes))

    # ears (long hair covers them)
    if f.hair_style != 1:
        for side in (-1, 1):
            ear = _ellipse(side * (f.width + 0.02), 0.3, 0.13, 0.3)
            draw.polygon(pix(ear), fill=_rgba(skin, 0.9))
            draw.polygon(
                pix(_ellipse(side * (f.width + 0.04), 0.32, 0.06, 0.17)), fill=_rgba(skin, 0.72)
            )

    # face skin
    face = pix(np.concatenate([_skull(f), _jaw(f)]))
    draw.polygon(face, fill=_rgba(skin))
    draw_hair.polygon(face, fill=0)

    # front hair: everything of the hair cap above the hairline
    xs = np.linspace(f.width + grow, -f.width - grow, 40)
    r = np.clip(np.abs(xs) / f.width, 0.0, 1.0)
    lean = f.parting * xs / f.width
    hairline = f.hairline + (f.temple - f.hairline) * r**2.5 + lean * (1.0 - r)
    if f.hair_style == 0:  # short: sideburns
        hairline = np.where(r >= 0.93, f.temple + 0.35, hairline)
    front = pix(np.concatenate([_skull(f, grow)[::-1], _curve(xs, hairline)]))
    draw.polygon(front, fill=_rgba(hair))
    draw_hair.polygon(front, fill=255)

    # brows
    for side in (-1, 1):
        line = _brow(f, side)
        inner_to_outer = np.linspace(0.0, 1.0, len(line))
        if side < 0:
            inner_to_outer = inner_to_outer[::-1]
        half = 0.5 * f.brow_thickness * (1.0 - 0.55 * inner_to_outer**1.5)
        draw.polygon(pix(_thick(line, half)), fill=_rgba(f.brows))

    # eyes
    lash = max(1, int(round(0.03 * px)))
    for side in (-1, 1):
        upper, lower = _eye(f, side)
        draw.line(
            pix(upper - [0.0, 0.06]), fill=_rgba(skin, 0.78), width=max(1, lash // 2), joint="curve"
        )
        draw.polygon(pix(np.concatenate([upper, lower[::-1]])), fill=_rgba((232, 228, 222)))
        draw.polygon(pix(_iris(f, side, upper, lower, f.iris_radius)), fill=_rgba(f.iris))
        draw.polygon(
            pix(_iris(f, side, upper, lower, 0.45 * f.iris_radius)), fill=_rgba((12, 10, 10))
        )
        cx, cy = side * 0.5 + f.gaze[0] + 0.03, f.gaze[1] - 0.04
        draw.polygon(pix(_ellipse(cx, cy, 0.022, 0.022, 8)), fill=_rgba((250, 250, 250)))
        draw.line(pix(upper), fill=_rgba((30, 22, 20)), width=lash, joint="curve")
        draw.line(pix(lower), fill=_rgba(skin, 0.6), width=max(1, lash // 2), joint="curve")

    # nose: nostrils, base line, alae
    base = _nose_base(f)
    nose_extra = 0.25
    thin = max(1, int(round(0.025 * px)))
    for side in (-1, 1):
        nostril = _ellipse(side * 0.45 * f.nose_half_width, f.nose_base + 0.01, 0.055, 0.028, 12)
        draw.polygon(pix(nostril, extra=nose_extra), fill=_rgba(skin, 0.35))
        theta = np.linspace(0.0, np.pi * 0.9, 10)
        ala = _curve(
            side * (f.nose_half_width - 0.06 + 0.07 * np.sin(theta)),
            f.nose_base - 0.08 * (1.0 - np.cos(theta)),
        )
        draw.line(
            pix(ala, extra=nose_extra * 0.6), fill=_rgba(skin, 0.72), width=thin, joint="curve"
        )
    draw.line(pix(base, extra=nose_extra), fill=_rgba(skin, 0.62), width=thin, joint="curve")

    # mouth
    m = _mouth(f)
    draw.polygon(
        pix(np.concatenate([m["outer_up"], m["inner_up"][::-1]])), fill=_rgba(f.lips, 0.92)
    )
    draw.polygon(
        pix(np.concatenate([m["inner_low"], m["outer_low"][::-1]])), fill=_rgba(f.lips, 1.05)
    )
    if f.mouth_open > 0.0:
        opening = np.concatenate([m["inner_up"], m["inner_low"][::-1]])
        draw.polygon(pix(opening), fill=_rgba((50, 18, 20)))
        teeth = np.concatenate([m["inner_up"], (m["inner_up"] + [0.0, 0.45 * f.mouth_open])[::-1]])
        draw.polygon(pix(teeth), fill=_rgba((205, 196, 182)))
    draw.line(pix(m["inner_up"]), fill=_rgba(f.lips, 0.5), width=thin, joint="curve")
    return layer, hair_mask


def _pixel_grid(size: int) -> np.ndarray:
    """(size,size,2) pixel centres (x, y)."""
    return np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="xy"), axis=-1).astype(
        np.float32
    )


def _hair_texture(f: _Face, uv: np.ndarray) -> np.ndarray:
    """(H,W) multiplicative streaks radiating from the crown and a sheen band."""
    u, v = uv[..., 0] - 0.4 * f.parting, uv[..., 1] - (f.skull_top - 0.6)
    angle = np.arctan2(u, v)
    radius = np.hypot(u, v)
    p = f.hair_phases
    streaks = (
        0.5 * np.sin(37.0 * angle + p[0])
        + 0.3 * np.sin(83.0 * angle + p[1])
        + 0.4 * np.sin(19.0 * angle + p[2])
    )
    sheen = np.exp(-(((radius - 1.5) / 0.25) ** 2))
    return 1.0 + 0.07 * streaks + 0.25 * sheen


def _shading(f: _Face, uv: np.ndarray) -> np.ndarray:
    """Multiplicative (H,W,3) light for the person layer at canonical coordinates ``uv`` (H,W,2)."""
    u, v = uv[..., 0], uv[..., 1]

    def blob(cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
        return np.exp(-(((u - cx) / sx) ** 2) - ((v - cy) / sy) ** 2)

    # head as an ellipsoid lit from f.light
    nx = np.clip(u / (f.width + 0.2), -1.0, 1.0)
    ny = np.clip((v - 0.1) / 2.4, -1.0, 1.0)
    nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
    lx, ly, lz = f.light
    lambert = np.clip(nx * lx + ny * ly + nz * lz, 0.0, 1.0)
    light = f.ambient + (1.15 - f.ambient) * lambert
    dark = f.socket_shadow * (blob(-0.5, -0.08, 0.3, 0.17) + blob(0.5, -0.08, 0.3, 0.17))
    away = -np.sign(lx) if lx != 0.0 else 1.0
    dark += 0.18 * blob(away * 0.12, 0.5 * f.nose_tip, 0.06, 0.4)  # side of the nose bridge
    dark += 0.16 * blob(0.0, f.nose_base + 0.13, 0.22, 0.05)  # under the nose
    dark += 0.14 * blob(0.0, f.mouth_y + f.lower_lip + 0.09, 0.25, 0.05)  # under the lower lip
    dark -= 0.1 * blob(0.0, f.nose_tip - 0.06, 0.07, 0.08)  # nose tip highlight
    dark += 0.1 * (
        blob(-f.nose_half_width, f.nose_base - 0.05, 0.05, 0.07)
        + blob(f.nose_half_width, f.nose_base - 0.05, 0.05, 0.07)
    )
    dark -= 0.05 * blob(0.0, f.mouth_y + 0.6 * f.lower_lip, 0.12, 0.03)  # lower lip highlight
    shade = (light * (1.0 - dark))[..., None]
    cheeks = blob(-0.62, 0.62, 0.26, 0.22) + blob(0.62, 0.62, 0.26, 0.22)
    tint = 1.0 - f.blush * cheeks[..., None] * np.array([0.0, 0.1, 0.08], dtype=np.float32)
    return shade * tint


def _background(f: _Face, size: int) -> np.ndarray:
    """(size,size,3) solid or linear-gradient colours."""
    coords = (np.arange(size) + 0.5) / size - 0.5
    x, y = np.meshgrid(coords, coords, indexing="xy")
    t = np.clip(0.5 + x * np.cos(f.background_angle) + y * np.sin(f.background_angle), 0.0, 1.0)[
        ..., None
    ]
    first, second = np.array(f.background[0]), np.array(f.background[1])
    return (first + t * (second - first)).astype(np.float32)


def render_face(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(size,size,3) uint8 RGB face and its (68,2) float32 landmarks."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} pixels, got {size}")
    rng = np.random.default_rng(seed)
    f = _sample_face(rng, size)
    layer, hair_mask = _draw_layer(f, size)
    layer = np.asarray(layer.reduce(SUPERSAMPLE), dtype=np.float32)
    hair = np.asarray(hair_mask.reduce(SUPERSAMPLE), dtype=np.float32)[..., None] / 255.0
    coverage = layer[..., 3:] / 255.0
    uv = _Placement(f).to_canonical(_pixel_grid(size))
    light = _shading(f, uv) * (1.0 + hair * (_hair_texture(f, uv)[..., None] - 1.0))
    person = layer[..., :3] * coverage * light
    image = person + (1.0 - coverage) * _background(f, size)
    image += 2.0 * rng.standard_normal(image.shape, dtype=np.float32)
    landmarks = _Placement(f)(_canonical_landmarks(f), extra=_landmark_nose_depth())
    return np.clip(np.round(image), 0, 255).astype(np.uint8), landmarks.astype(np.float32)


def _landmark_nose_depth() -> np.ndarray:
    """How far each landmark sticks out of the face surface (68,): the nose does."""
    extra = np.zeros(68)
    extra[27:31] = np.linspace(0.05, 0.3, 4)
    extra[31:36] = 0.25
    return extra


def render_faces(seeds: Sequence[int], size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(N,size,size,3) uint8, (N,68,2) float32."""
    images = np.empty((len(seeds), size, size, 3), dtype=np.uint8)
    landmarks = np.empty((len(seeds), 68, 2), dtype=np.float32)
    for i, seed in enumerate(seeds):
        images[i], landmarks[i] = render_face(int(seed), size)
    return images, landmarks
