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

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from faceinpaint.batch import from_unit, to_unit
from faceinpaint.device import resolve_device
from faceinpaint.io import eight_bit, save_image
from faceinpaint.lit.inference import load_inpainter
from faceinpaint.lit.loading import read_checkpoint
from faceinpaint.photo.align import FaceAligner, InpaintError, frame_hole, frame_of, warp_to_frame
from faceinpaint.photo.paste import default_feather, paste_back

log = logging.getLogger(__name__)


class FrameInpainter:
    """An inpainting checkpoint (VAE-GAN or DCGAN) that fills (S,S,3) frames through its
    ``inpaint(damaged, mask, index)``; ``frame`` says where faces sit."""

    def __init__(
        self,
        checkpoint: str,
        device: str = "auto",
        overrides: dict[str, Any] | None = None,
    ) -> None:
        overrides = dict(overrides or {})
        try:
            contents = read_checkpoint(checkpoint)
            self.model = load_inpainter(checkpoint, contents, **overrides)
        except (ValueError, FileNotFoundError) as err:
            raise InpaintError(str(err)) from err
        self.device = resolve_device(device)
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
        index = torch.zeros(1, dtype=torch.int64, device=self.device)  # one photo: sample 0
        with torch.no_grad():  # a search turns autograd on where it needs it
            result = self.model.inpaint(damaged, mask, index).detach()
        result = mask * result + (1.0 - mask) * image
        return (to_unit(result)[0].permute(1, 2, 0) * 255.0).cpu().numpy().astype(np.float32)


# ----------------------------------------------------------------------------- files
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
    """(H,W,3) uint8 RGB, EXIF orientation applied, 16-bit scaled to 8, an alpha channel dropped
    with a note; ``InpaintError`` when it is not an image."""
    try:
        with Image.open(path) as image:
            image.load()
            if "A" in image.getbands() or "transparency" in image.info:
                log.warning(
                    "%s has an alpha channel (mode %s): it is dropped, the photo is inpainted "
                    "from its colours alone and written without transparency",
                    path,
                    image.mode,
                )
            rgb = eight_bit(ImageOps.exif_transpose(image)).convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise InpaintError(f"cannot read {path} as an image: {err}") from err


def read_mask(path: Path, photo_shape: tuple[int, int], photo_name: str) -> np.ndarray:
    """(H,W) bool hole of a mask image of the photo's size: grey levels >= 128 (white) are the
    hole, below 128 known (a grey or anti-aliased mask is thresholded at 128)."""
    try:
        with Image.open(path) as image:
            image.load()
            grey = np.asarray(eight_bit(ImageOps.exif_transpose(image)).convert("L"))
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
    frame_image = warp_to_frame(photo, face.matrix, frame.size)
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
    overrides: dict[str, Any] | None = None,
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
        overrides: inference settings replacing the checkpoint's, among those its method takes
            (its class's ``inference_settings``), e.g. ``{candidates: 8, iterations: 200}`` for
            a DCGAN search or ``{poisson_iterations: 300}`` for a VAE-GAN.

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

    inpainter = FrameInpainter(checkpoint, device, overrides)
    aligner = FaceAligner(upsample=upsample)
    written: list[Path] = []
    failures: list[str] = []
    progress = tqdm(jobs, desc="inpaint", unit="photo", disable=len(jobs) == 1)
    with logging_redirect_tqdm():  # a failed photo's line prints above the bar
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
    log.info("wrote %s", written[0] if len(jobs) == 1 else f"{len(written)} photos to {target}")
    if failures:
        raise InpaintError(
            f"{len(failures)} of {len(jobs)} photos failed (the others were written):\n"
            + "\n".join(failures)
        )
    return written
