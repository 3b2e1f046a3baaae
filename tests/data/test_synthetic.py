"""Invariants of the procedural face generator: determinism, geometry, landmarks on the drawn features."""

from __future__ import annotations

import numpy as np
import pytest

from faceinpaint.data.synthetic import render_face, render_faces
from faceinpaint.landmarks import ibug

SEEDS = range(200)


@pytest.fixture(scope="module")
def faces_128() -> tuple[np.ndarray, np.ndarray]:
    return render_faces(SEEDS, 128)


def _upright(landmarks: np.ndarray) -> np.ndarray:
    """(N,68,2) landmarks rotated so that the line through the eye centres is horizontal."""
    right = landmarks[:, ibug.RIGHT_EYE].mean(axis=1)
    left = landmarks[:, ibug.LEFT_EYE].mean(axis=1)
    dx, dy = (left - right).T
    angle = np.arctan2(dy, dx)
    cos, sin = np.cos(-angle)[:, None], np.sin(-angle)[:, None]
    centred = landmarks - 0.5 * (right + left)[:, None]
    x, y = centred[..., 0], centred[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)


def _pixel(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    x, y = np.round(xy).astype(int)
    return image[y, x].astype(np.float64)


def _contrast(image: np.ndarray, xy: np.ndarray) -> float:
    """Luminance range of the 3x5 patch around ``xy``."""
    x, y = np.round(xy).astype(int)
    patch = image[y - 1 : y + 2, x - 2 : x + 3].astype(np.float64).mean(axis=-1)
    return float(patch.max() - patch.min())


def test_same_seed_gives_identical_bytes() -> None:
    first_image, first_landmarks = render_face(7)
    second_image, second_landmarks = render_face(7)
    assert first_image.tobytes() == second_image.tobytes()
    assert first_landmarks.tobytes() == second_landmarks.tobytes()


def test_batch_equals_single_faces_in_any_order() -> None:
    images, landmarks = render_faces([5, 2, 5])
    for i, seed in enumerate([5, 2, 5]):
        image, points = render_face(seed)
        assert np.array_equal(images[i], image), f"batch entry {i} differs from render_face({seed})"
        assert np.array_equal(landmarks[i], points)


def test_different_seeds_differ() -> None:
    (image_a, points_a), (image_b, points_b) = render_face(0), render_face(1)
    assert np.abs(image_a.astype(int) - image_b.astype(int)).mean() > 10.0
    assert np.abs(points_a - points_b).max() > 1.0


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_and_dtypes(size: int) -> None:
    images, landmarks = render_faces([0, 1, 2], size)
    assert images.shape == (3, size, size, 3) and images.dtype == np.uint8
    assert landmarks.shape == (3, 68, 2) and landmarks.dtype == np.float32
    image, points = render_face(0, size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert points.shape == (68, 2) and points.dtype == np.float32


def test_too_small_size_is_refused() -> None:
    with pytest.raises(ValueError, match="size must be at least"):
        render_face(0, 8)


def test_landmarks_inside_image(faces_128: tuple[np.ndarray, np.ndarray]) -> None:
    _, landmarks = faces_128
    assert landmarks.min() >= 0.0 and landmarks.max() <= 127.0, (
        f"landmarks span [{landmarks.min():.1f}, {landmarks.max():.1f}], expected within [0, 127]"
    )


def test_same_face_at_half_size() -> None:
    """Pixel centres at integers: x_64 = (x_128 + 0.5) / 2 - 0.5, and the images agree after 2x2 pooling."""
    big, big_points = render_faces(range(8), 128)
    small, small_points = render_faces(range(8), 64)
    np.testing.assert_allclose(small_points, (big_points + 0.5) / 2 - 0.5, atol=1e-4)
    pooled = big.reshape(8, 64, 2, 64, 2, 3).astype(np.float64).mean(axis=(2, 4))
    aligned = np.abs(pooled - small).mean()
    shifted = np.abs(np.roll(pooled, 1, axis=2) - small).mean()
    assert aligned < 4.0 and aligned < 0.6 * shifted, (
        f"pooled 128 vs 64: {aligned:.2f}, shifted 1 px: {shifted:.2f}"
    )


def test_semantic_layout(faces_128: tuple[np.ndarray, np.ndarray]) -> None:
    upright = _upright(faces_128[1])
    eyes_y = upright[:, 36:48, 1].mean(axis=1)
    nose_tip_y = upright[:, 30, 1]
    mouth_y = upright[:, 48:68, 1].mean(axis=1)
    assert (eyes_y < nose_tip_y).all() and (nose_tip_y < mouth_y).all(), (
        "expected eyes above nose tip above mouth"
    )
    brows_y = upright[:, 17:27, 1].mean(axis=1)
    assert (brows_y < eyes_y).all(), "expected brows above the eyes"
    assert (upright[:, 36:42, 0].max(axis=1) < upright[:, 42:48, 0].min(axis=1)).all(), (
        "expected the right eye (36-41) on the image left of the left eye (42-47)"
    )
    jaw = upright[:, ibug.JAW]
    assert (jaw[:, :, 1].argmax(axis=1) == 8).all(), (
        "expected jaw point 8 to be the chin, the lowest jaw point"
    )
    assert (np.diff(jaw[:, :, 0], axis=1) > 0).all(), (
        "expected the jaw to run from image left to image right"
    )
    outer_lips = upright[:, ibug.OUTER_LIPS]
    assert (outer_lips[:, 0, 0] < outer_lips[:, 6, 0]).all(), (
        "expected mouth corner 48 left of corner 54"
    )
    assert (outer_lips[:, 3, 1] < outer_lips[:, 9, 1]).all(), (
        "expected upper lip 51 above lower lip 57"
    )


def test_flip_permutation_mirrors_the_face(faces_128: tuple[np.ndarray, np.ndarray]) -> None:
    """Upright, a face is close to its own mirror image under FLIP_PERMUTATION (yaw keeps it from exact)."""
    landmarks = faces_128[1]
    upright = _upright(landmarks)
    mirrored = upright[:, ibug.FLIP_PERMUTATION] * np.array([-1.0, 1.0])
    error = np.linalg.norm(mirrored - upright, axis=-1).mean(axis=1)
    scrambled = np.linalg.norm(mirrored[:, ::-1] - upright, axis=-1).mean(axis=1)
    iod = np.linalg.norm(landmarks[:, 36] - landmarks[:, 45], axis=1)
    assert np.median(error / iod) < 0.15, (
        f"median mirror error {np.median(error / iod):.3f} of the inter-ocular"
    )
    assert (error < scrambled).all()


def test_eyes_and_lips_are_drawn_where_landmarks_say(
    faces_128: tuple[np.ndarray, np.ndarray],
) -> None:
    images, landmarks = faces_128
    for image, points in zip(images, landmarks, strict=True):
        cheek = 0.5 * (points[3] + points[31])
        cheek_colour = _pixel(image, cheek)
        cheek_contrast = _contrast(image, cheek)
        for eye in (ibug.RIGHT_EYE, ibug.LEFT_EYE):
            centre = points[eye].mean(axis=0)
            assert _contrast(image, centre) > max(40.0, 3.0 * cheek_contrast), (
                f"eye at {centre} shows no iris/white contrast ({_contrast(image, centre):.0f}) "
                f"well above the cheek's ({cheek_contrast:.0f})"
            )
        lower_lip = _pixel(image, 0.5 * (points[57] + points[66]))
        lip_redness = lower_lip[0] / (lower_lip[1] + 1.0)
        skin_redness = cheek_colour[0] / (cheek_colour[1] + 1.0)
        assert lip_redness > 1.1 * skin_redness, (
            f"lower lip {lower_lip} is not redder than the cheek {cheek_colour}"
        )


def test_inter_ocular_distance_is_plausible_and_varies(
    faces_128: tuple[np.ndarray, np.ndarray],
) -> None:
    landmarks = faces_128[1]
    iod = (
        np.linalg.norm(
            landmarks[:, ibug.RIGHT_EYE_OUTER] - landmarks[:, ibug.LEFT_EYE_OUTER], axis=1
        )
        / 128
    )
    assert iod.min() > 0.2 and iod.max() < 0.4, (
        f"inter-ocular / size in [{iod.min():.3f}, {iod.max():.3f}]"
    )
    assert iod.max() / iod.min() > 1.25, "expected the face scale to vary across seeds"


def test_variety(faces_128: tuple[np.ndarray, np.ndarray]) -> None:
    images, landmarks = faces_128
    mean_colours = images.reshape(len(images), -1, 3).mean(axis=1)  # (N, 3)
    assert mean_colours.std(axis=0).min() > 10.0, (
        f"mean colour std per channel {mean_colours.std(axis=0)}"
    )
    centre = images[:, 44:84, 44:84].reshape(len(images), -1, 3).mean(axis=1)  # mostly skin
    assert centre.mean(axis=1).std() > 20.0, "expected skin tones to vary"
    assert landmarks[:, 30].std(axis=0).min() > 2.0, "expected the nose tip position to vary"
    roll = np.degrees(np.arctan2(*(landmarks[:, 45] - landmarks[:, 36])[:, ::-1].T))
    assert roll.std() > 3.0, (
        f"expected in-plane rotation to vary, roll std {roll.std():.1f} degrees"
    )
