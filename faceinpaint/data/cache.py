"""Decode every image once into a memory-mapped uint8 array.

A cache entry is a folder named by a hash of everything that determines its
pixels (the source files and their sizes and times, the crop and the output size).
Change any of them and a new entry is built; an entry is written to a temporary
folder and renamed into place only when complete, so a crash never leaves a
half-written cache behind. The images' blocks are reserved on disk before any is decoded: a full
disk is a ``DiskFullError`` naming the bytes needed and free, not a SIGBUS on a later write to the
memory map. A build holds a lock on ``<temporary folder>/.lock`` while it
runs and removes its folder when it fails or receives SIGTERM; the next build removes the
temporary folders whose lock nobody holds (builds killed by SIGKILL or a power cut), never
one whose build is still running.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from faceinpaint.io import (
    NO_SPACE,
    DiskFullError,
    atomic_write,
    disk_full,
    eight_bit,
    free_bytes,
    require_space,
    umask_mode,
)

log = logging.getLogger(__name__)

CACHE_VERSION = 1
IMAGES_FILE = "images.npy"
NAMES_FILE = "names.txt"
META_FILE = "meta.json"
LANDMARKS_FILE = "landmarks.npz"
LOCK_FILE = ".lock"  # in a temporary entry folder: locked by the build that writes it
TEMPORARY_MARK = ".tmp"  # temporary entry folders are named <entry>.tmp<random>
NPY_HEADER_BOUND = 4096  # bytes: a bound on a .npy file's header


@dataclass(frozen=True)
class Crop:
    """A square crop given as fractions of the source image: centre (cx·W, cy·H), side size·W."""

    center_x: float = 0.5
    center_y: float = 0.5
    size: float = 1.0
    min_side: float = 0.0  # a crop with a smaller side, source pixels, is an ImageError

    def box(self, width: int, height: int) -> tuple[float, float, float, float]:
        side = self.size * width
        x0 = self.center_x * width - side / 2
        y0 = self.center_y * height - side / 2
        return x0, y0, x0 + side, y0 + side


class ImageError(ValueError):
    """An image that cannot be used: unreadable, corrupt, or smaller than the crop."""


def load_crop(path: Path, crop: Crop, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: the crop of ``path`` resized (antialiased) to ``size``."""
    try:
        with Image.open(path) as img:
            img.load()
            rgb = eight_bit(img).convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise ImageError(f"cannot read image {path}: {err}") from err
    width, height = rgb.size
    x0, y0, x1, y1 = crop.box(width, height)
    tol = 0.5
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        raise ImageError(
            f"image {path} ({width}x{height}) is smaller than the crop "
            f"(box {x0:.1f},{y0:.1f},{x1:.1f},{y1:.1f}); lower crop_size or move crop_center"
        )
    box = (max(x0, 0.0), max(y0, 0.0), min(x1, width), min(y1, height))
    side = min(box[2] - box[0], box[3] - box[1])
    minimum = getattr(crop, "min_side", 0.0)
    if side < minimum:
        raise ImageError(
            f"image {path} ({width}x{height}) gives a {side:.0f} px crop, below the "
            f"{minimum:.0f} px minimum (min_crop_side): it would be upscaled {size / side:.0f}x "
            f"to {size} px"
        )
    return np.asarray(rgb.resize((size, size), Image.Resampling.BICUBIC, box=box), dtype=np.uint8)


def _decode_chunk(
    args: tuple[list[str], Crop | Sequence[Crop], int],
) -> tuple[np.ndarray, list[str | None]]:
    """Worker: decode a chunk; errors come back as messages (None where fine)."""
    paths, crop, size = args
    crops = [crop] * len(paths) if isinstance(crop, Crop) else crop
    out = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    errors: list[str | None] = []
    for i, path in enumerate(paths):
        try:
            out[i] = load_crop(Path(path), crops[i], size)
            errors.append(None)
        except ImageError as err:
            errors.append(str(err))
    return out, errors


def file_fingerprint(paths: Sequence[Path]) -> str:
    """Hash of the files' names, sizes and modification times (not their bytes: fast on 200k files)."""
    digest = hashlib.sha1()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(payload: dict) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class CachedSplit:
    """One split's decoded faces: ``images`` (N,S,S,3) uint8, memory-mapped."""

    directory: Path
    names: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def images_path(self) -> Path:
        return self.directory / IMAGES_FILE

    @property
    def landmarks_path(self) -> Path:
        """``.npz`` with ``landmarks`` (N,68,2) float32 pixels and ``found`` (N,) bool."""
        return self.directory / LANDMARKS_FILE

    @property
    def images(self) -> np.ndarray:
        return np.load(self.images_path, mmap_mode="r")

    def __len__(self) -> int:
        return len(self.names)

    def load_landmarks(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.landmarks_path.is_file():
            return None
        with np.load(self.landmarks_path) as data:
            landmarks, found = data["landmarks"].astype(np.float32), data["found"].astype(bool)
        if landmarks.shape != (len(self), 68, 2) or found.shape != (len(self),):
            raise ValueError(
                f"{self.landmarks_path} holds landmarks {landmarks.shape} / found {found.shape} "
                f"for {len(self)} images; delete it and annotate again"
            )
        return landmarks, found

    def save_landmarks(self, landmarks: np.ndarray, found: np.ndarray) -> None:
        """Write atomically (temporary file, then rename)."""
        if landmarks.shape != (len(self), 68, 2) or found.shape != (len(self),):
            raise ValueError(
                f"expected landmarks ({len(self)},68,2) and found ({len(self)},), "
                f"got {landmarks.shape} and {found.shape}"
            )
        with atomic_write(self.landmarks_path, "wb") as handle:
            np.savez(handle, landmarks=landmarks.astype(np.float32), found=found.astype(bool))


def open_entry(directory: Path) -> CachedSplit | None:
    """The complete cache entry at ``directory``, or None if there is none."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    names = (directory / NAMES_FILE).read_text().splitlines()
    return CachedSplit(directory, names, meta)


def remove_stale_temporaries(parent: Path) -> list[Path]:
    """Remove the temporary entry folders under ``parent`` whose build is dead (their lock is
    free); folders of running builds, and folders without a lock file, are left alone."""
    removed = []
    for folder in sorted(parent.glob(f"*{TEMPORARY_MARK}*")):
        try:
            fd = os.open(folder / LOCK_FILE, os.O_RDWR)
        except OSError:
            continue  # no lock (yet, or an older version's folder): not ours to judge
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a build in progress
        else:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d temporary cache folder(s) of dead builds: %s", len(removed), removed)
    unlocked = [
        f for f in parent.glob(f"*{TEMPORARY_MARK}*") if f.is_dir() and not (f / LOCK_FILE).exists()
    ]
    if unlocked:
        log.warning(
            "temporary cache folder(s) without a build lock (left by an older version?): %s; "
            "delete them by hand if no faceinpaint prepare is running",
            [str(f) for f in unlocked],
        )
    return removed


def _sigterm_raises(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _temporary_entry(directory: Path) -> Iterator[Path]:
    """A locked temporary folder beside ``directory``, removed on any failure or on SIGTERM."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory.parent)
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + TEMPORARY_MARK, dir=directory.parent))
    # The lock file appears already locked: created under another name, locked, then renamed.
    fd = os.open(tmp / (LOCK_FILE + ".new"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(tmp / (LOCK_FILE + ".new"), tmp / LOCK_FILE)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_raises)
    try:
        yield tmp
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full(err, directory)
        if full is None or full is err:
            raise
        raise full from err
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        os.close(fd)


def reserved_memmap(path: Path, shape: tuple[int, ...]) -> np.memmap:
    """A new uint8 ``.npy`` memory map of ``shape`` whose blocks are allocated on disk now.

    A memory map over a sparse file on a full disk (or tmpfs) is killed by SIGBUS at the first
    write that finds no block; checking the free space and ``posix_fallocate`` turn that into a
    ``DiskFullError`` before any image is decoded."""
    require_space(path, int(np.prod(shape)) + NPY_HEADER_BOUND)
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno in NO_SPACE:
            raise DiskFullError(path, size, free_bytes(path)) from err
        log.info("%s: no block reservation on this filesystem (%s)", path, err)
    finally:
        os.close(fd)
    return images


def _commit_entry(tmp: Path, final: Path, names: list[str], meta: dict) -> CachedSplit:
    """Write the names and metadata last, then rename the finished entry into place."""
    (tmp / NAMES_FILE).write_text("\n".join(names) + "\n")
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.chmod(tmp, umask_mode(directory=True))
    try:
        os.replace(tmp, final)
    except OSError:
        # Another process finished the same entry first: keep theirs.
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        (final / LOCK_FILE).unlink()
    entry = open_entry(final)
    assert entry is not None
    return entry


def build_from_files(
    directory: Path,
    paths: Sequence[Path],
    crop: Crop | Sequence[Crop],
    size: int,
    meta: dict,
    workers: int = 2,
    skip_corrupt: bool = False,
    progress: bool = True,
) -> CachedSplit:
    """Decode ``paths`` into a new cache entry at ``directory``; ``crop`` is one for all, or
    one per path (anything with ``Crop.box``'s signature, e.g. a crop around a face box)."""
    if not paths:
        raise ValueError(f"no images to cache for {meta.get('split', '?')} split")
    with _temporary_entry(directory) as tmp:
        images = reserved_memmap(tmp / IMAGES_FILE, (len(paths), size, size, 3))
        chunk = 256
        jobs = [
            (
                [str(p) for p in paths[i : i + chunk]],
                crop if isinstance(crop, Crop) else list(crop[i : i + chunk]),
                size,
            )
            for i in range(0, len(paths), chunk)
        ]
        kept: list[str] = []
        errors: list[str] = []
        bar = _progress(len(paths), f"caching {meta.get('split', '')} at {size}px", progress)
        ctx = get_context("spawn") if workers > 1 else None
        pool = ctx.Pool(workers) if ctx else None
        try:
            results = pool.imap(_decode_chunk, jobs) if pool else map(_decode_chunk, jobs)
            for job, (arr, errs) in zip(jobs, results, strict=True):
                for path, img, err in zip(job[0], arr, errs, strict=True):
                    if err is None:
                        images[len(kept)] = img
                        kept.append(Path(path).name)
                    elif skip_corrupt and "cannot read" in err:
                        errors.append(err)
                    elif "cannot read" in err:
                        raise ImageError(f"{err} (skip_corrupt: true skips unreadable images)")
                    else:
                        raise ImageError(err)
                bar.update(len(job[0]))
        finally:
            bar.close()
            if pool:
                pool.terminate()
        if errors:
            log.warning(
                "skipped %d unreadable image(s) of %d (first: %s)",
                len(errors),
                len(paths),
                errors[0],
            )
        if not kept:
            raise ValueError(f"every image of the {meta.get('split')} split is unreadable")
        images.flush()
        if len(kept) < len(paths):
            shrunk = reserved_memmap(tmp / "kept.npy", (len(kept), size, size, 3))
            shrunk[:] = images[: len(kept)]
            shrunk.flush()
            del shrunk
            os.replace(tmp / "kept.npy", tmp / IMAGES_FILE)
        del images
        meta = {**meta, "count": len(kept), "skipped": errors}
        return _commit_entry(tmp, directory, kept, meta)


def build_from_arrays(
    directory: Path,
    produce: Callable[[], tuple[np.ndarray, np.ndarray | None]],
    names: list[str],
    meta: dict,
) -> CachedSplit:
    """A cache entry from images made in memory (the embedded set), with exact landmarks if given."""
    with _temporary_entry(directory) as tmp:
        images, landmarks = produce()
        require_space(tmp / IMAGES_FILE, images.nbytes + NPY_HEADER_BOUND)
        np.save(tmp / IMAGES_FILE, images)
        if landmarks is not None:
            np.savez(
                tmp / LANDMARKS_FILE,
                landmarks=landmarks.astype(np.float32),
                found=np.ones(len(images), dtype=bool),
            )
        return _commit_entry(tmp, directory, names, {**meta, "count": len(images)})


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img")


def default_cache_dir() -> Path:
    """``$FACEINPAINT_CACHE``, else ``$XDG_CACHE_HOME/faceinpaint``, else ``~/.cache/faceinpaint``."""
    if env := os.environ.get("FACEINPAINT_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faceinpaint"
