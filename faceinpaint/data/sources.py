"""Where face images come from: CelebA's official layout (aligned, or in the wild with face
boxes), or any folder with a split rule.

Each returns, per split, a sorted list of image paths. The embedded procedural set
(``faceinpaint.data.synthetic``) needs no files and is handled by the cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from faceinpaint.data.cache import ImageError

Layout = Literal["auto", "celeba", "celeba-wild", "folder"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CELEBA_IMAGES = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_SPLIT_CODES = {"0": "train", "1": "val", "2": "test"}
CELEBA_WILD_IMAGES = "img_celeba"
CELEBA_BOXES = "list_bbox_celeba.txt"

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s*-\s*(\d+(?:\.\d+)?)%\s*$")


def detect_layout(root: Path) -> Literal["celeba", "folder"]:
    """``celeba`` when ``root`` holds ``img_align_celeba/``, else ``folder``."""
    return "celeba" if (root / CELEBA_IMAGES).is_dir() else "folder"


def check_root(root: Path) -> None:
    if not root.exists():
        raise FileNotFoundError(f"data root {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"data root {root} is not a folder")


def celeba_splits(root: Path, images_folder: str = CELEBA_IMAGES) -> dict[str, list[Path]]:
    """CelebA's official partitions from ``list_eval_partition.txt`` (0 train, 1 val, 2 test),
    as files of ``images_folder`` (``img_align_celeba``, or ``img_celeba`` in the wild)."""
    images = root / images_folder
    partition = root / CELEBA_PARTITION
    if not partition.is_file():
        raise FileNotFoundError(
            f"CelebA layout needs {partition} (the official partition file, 'name code' per line)"
        )
    splits: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    present = set(os.listdir(images))  # one listing, not 200k stat calls
    missing: list[tuple[int, str]] = []
    for line_no, line in enumerate(partition.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in CELEBA_SPLIT_CODES:
            raise ValueError(
                f"{partition}:{line_no}: expected '<image name> <0|1|2>', got {line!r}"
            )
        if parts[0] not in present:
            missing.append((line_no, parts[0]))
        splits[CELEBA_SPLIT_CODES[parts[1]]].append(images / parts[0])
    if missing:
        line_no, name = missing[0]
        raise FileNotFoundError(
            f"{partition}:{line_no} names {name}, which is not in {images} "
            f"({len(missing)} listed image(s) missing in all)"
        )
    return {name: sorted(paths) for name, paths in splits.items()}


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, or in ``folder/images`` when that exists."""
    if (folder / "images").is_dir():
        folder = folder / "images"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def select_split(files: list[Path], rule: str) -> list[Path]:
    """Files chosen by a split rule.

    ``"1-8000"``: numeric file stems in [1, 8000] (comma-separate several ranges);
    ``"90%-100%"``: that slice of the sorted file list; ``"all"``: every file.
    """
    if rule.strip() == "all":
        return list(files)
    chosen: list[Path] = []
    for part in rule.split(","):
        if m := _RANGE.match(part):
            lo, hi = int(m.group(1)), int(m.group(2))
            for path in files:
                if not path.stem.isdigit():
                    raise ValueError(
                        f"split rule {rule!r} selects by numeric file name, but {path.name} is not numeric; "
                        "use a percentage rule such as '0%-90%'"
                    )
                if lo <= int(path.stem) <= hi:
                    chosen.append(path)
        elif m := _PERCENT.match(part):
            lo, hi = float(m.group(1)), float(m.group(2))
            if not 0 <= lo <= hi <= 100:
                raise ValueError(
                    f"split rule {part!r}: percentages must satisfy 0 <= a <= b <= 100"
                )
            n = len(files)
            chosen.extend(files[round(n * lo / 100) : round(n * hi / 100)])
        else:
            raise ValueError(
                f"split rule {part!r} is not 'A-B' (numeric file names), 'A%-B%' or 'all'"
            )
    return sorted(set(chosen))


def folder_splits(root: Path, rules: dict[str, str]) -> dict[str, list[Path]]:
    files = list_images(root)
    return {name: select_split(files, rule) for name, rule in rules.items()}


def resolve_splits(
    root: Path, layout: Layout, rules: dict[str, str] | None
) -> tuple[Literal["celeba", "celeba-wild", "folder"], dict[str, list[Path]]]:
    """The layout actually used and its split -> files map."""
    check_root(root)
    used = detect_layout(root) if layout == "auto" else layout
    if used == "celeba":
        return used, celeba_splits(root)
    if used == "celeba-wild":
        return used, celeba_splits(root, CELEBA_WILD_IMAGES)
    if not rules:
        raise ValueError(
            f"folder layout at {root} needs split rules, e.g. splits: {{train: '1-8000', val: '8001-9000'}}"
        )
    return used, folder_splits(root, rules)


# ----------------------------------------------------------------------- CelebA in the wild
@dataclass(frozen=True)
class FaceBoxCrop:
    """A square crop around an annotated face box, without alignment (no rotation, no landmarks).

    The square is centred on the box, its side ``scale`` times the box's longer side; where it
    would leave the image it is shifted back inside (and shrunk to the image's shorter side if
    larger), so every pixel is real. ``box`` has the ``Crop.box`` signature that
    ``cache.load_crop`` calls.
    """

    name: str  # image file name, for error messages
    x: float  # box left, pixels
    y: float  # box top, pixels
    width: float  # box width, pixels
    height: float  # box height, pixels
    scale: float = 1.0  # crop side / the box's longer side

    def box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the square crop in an image of ``width`` x ``height`` pixels."""
        inside_w = min(self.x + self.width, width) - max(self.x, 0)
        inside_h = min(self.y + self.height, height) - max(self.y, 0)
        if min(inside_w, inside_h) <= 0 or inside_w * inside_h < 0.5 * self.width * self.height:
            raise ImageError(
                f"face box of {self.name} (x {self.x:g}, y {self.y:g}, {self.width:g}x"
                f"{self.height:g}) lies outside its {width}x{height} image; fix {CELEBA_BOXES}"
            )
        side = min(self.scale * max(self.width, self.height), width, height)
        x0 = min(max(self.x + self.width / 2 - side / 2, 0.0), width - side)
        y0 = min(max(self.y + self.height / 2 - side / 2, 0.0), height - side)
        return x0, y0, x0 + side, y0 + side


def celeba_face_boxes(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """``list_bbox_celeba.txt``: image name -> (x, y, width, height) in pixels of ``img_celeba/``.

    The file is CelebA's: a count line, a header line (``image_id x_1 y_1 width height``), then one
    ``<name> x y w h`` line per image.
    """
    path = root / CELEBA_BOXES
    if not path.is_file():
        raise FileNotFoundError(
            f"the celeba-wild layout needs {path} (CelebA's face boxes, 'name x y width height' per line)"
        )
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if line_no <= 2 and (len(parts) < 5 or not parts[1].lstrip("-").isdigit()):
            continue  # the count and header lines
        if not parts:
            continue
        try:
            x, y, w, h = (int(v) for v in parts[1:])
        except ValueError:
            raise ValueError(
                f"{path}:{line_no}: expected '<image name> x y width height', got {line!r}"
            ) from None
        if w <= 0 or h <= 0:
            raise ValueError(f"{path}:{line_no}: face box of {parts[0]} has size {w}x{h}")
        boxes[parts[0]] = (x, y, w, h)
    return boxes


def face_box_crops(
    files: list[Path], boxes: dict[str, tuple[int, int, int, int]], scale: float
) -> list[FaceBoxCrop]:
    """The crop of each file around its box; a file without a box is a ValueError naming it."""
    missing = [path.name for path in files if path.name not in boxes]
    if missing:
        raise ValueError(
            f"{CELEBA_BOXES} has no face box for {len(missing)} image(s), e.g. {missing[0]}"
        )
    return [FaceBoxCrop(path.name, *boxes[path.name], scale=scale) for path in files]


def boxes_digest(crops: list[FaceBoxCrop]) -> str:
    """Hash of the crops' boxes and scale (part of a cache entry's key)."""
    digest = hashlib.sha1()
    for crop in crops:
        digest.update(
            f"{crop.name} {crop.x} {crop.y} {crop.width} {crop.height} {crop.scale}\n".encode()
        )
    return digest.hexdigest()
