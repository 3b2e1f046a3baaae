"""Where face images come from: CelebA's official layout, or any folder with a split rule.

Both return, per split, a sorted list of image paths. The embedded procedural set
(``faceinpaint.data.synthetic``) needs no files and is handled by the cache.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

Layout = Literal["auto", "celeba", "folder"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CELEBA_IMAGES = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_SPLIT_CODES = {"0": "train", "1": "val", "2": "test"}

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


def celeba_splits(root: Path) -> dict[str, list[Path]]:
    """CelebA's official partitions from ``list_eval_partition.txt`` (0 train, 1 val, 2 test)."""
    images = root / CELEBA_IMAGES
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
) -> tuple[Literal["celeba", "folder"], dict[str, list[Path]]]:
    """The layout actually used and its split -> files map."""
    check_root(root)
    used = detect_layout(root) if layout == "auto" else layout
    if used == "celeba":
        return used, celeba_splits(root)
    if not rules:
        raise ValueError(
            f"folder layout at {root} needs split rules, e.g. splits: {{train: '1-8000', val: '8001-9000'}}"
        )
    return used, folder_splits(root, rules)
