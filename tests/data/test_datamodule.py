"""The shared DataModule: sources, splits, cache, batch contract, augmentation, bad input."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceinpaint.batch import IMAGE, INDEX, LANDMARKS, LANDMARKS_FOUND, MASK, check_batch
from faceinpaint.data.cache import ImageError
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.masks import MaskSpec
from faceinpaint.data.synthetic import render_faces
from faceinpaint.landmarks.ibug import LEFT_EYE, RIGHT_EYE


def write_faces(
    folder: Path, count: int, start: int = 1, size: tuple[int, int] = (89, 109)
) -> None:
    """JPEG faces named like CelebA (000001.jpg ...) in ``folder``, made by the procedural renderer."""
    folder.mkdir(parents=True, exist_ok=True)
    faces, _ = render_faces(range(start, start + count), 96)
    for i, face in enumerate(faces):
        Image.fromarray(face).resize(size).save(folder / f"{start + i:06d}.jpg", quality=90)


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    write_faces(tmp_path / "faces" / "images", 30)
    return tmp_path / "faces"


def folder_dm(root: Path, cache: Path, **kwargs) -> FaceDataModule:
    defaults = dict(
        root=str(root),
        splits={"train": "1-20", "val": "21-25", "test": "26-30"},
        image_size=32,
        batch_size=4,
        num_workers=0,
        cache_dir=str(cache),
        cache_workers=1,
    )
    return FaceDataModule(**{**defaults, **kwargs})


# ------------------------------------------------------------------ embedded set
def test_embedded_splits_sizes_and_disjoint(tmp_path: Path) -> None:
    dm = FaceDataModule(synthetic_size=50, image_size=32, cache_dir=str(tmp_path), num_workers=0)
    sizes = {s: len(dm.cached_split(s)) for s in dm.split_names()}
    assert sizes == {"train": 40, "val": 5, "test": 5}
    names = [set(dm.cached_split(s).names) for s in dm.split_names()]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])


def test_embedded_batch_contract(tmp_path: Path) -> None:
    dm = FaceDataModule(
        synthetic_size=40, image_size=32, batch_size=8, cache_dir=str(tmp_path), num_workers=0
    )
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    assert raw[IMAGE].dtype == torch.uint8 and raw[IMAGE].shape == (8, 3, 32, 32)
    batch = dm.prepare_batch(raw, "train")
    check_batch(batch)
    assert batch[IMAGE].dtype == torch.float32
    assert -1.0 <= float(batch[IMAGE].min()) and float(batch[IMAGE].max()) <= 1.0
    assert batch[INDEX].dtype == torch.int64
    assert batch[LANDMARKS].shape == (8, 68, 2) and bool(batch[LANDMARKS_FOUND].all())
    # center mask of side 0.5 on 32 px: a 16 x 16 hole
    assert torch.all(batch[MASK].sum(dim=(1, 2, 3)) == 256)


def test_exact_landmarks_follow_the_cached_faces(tmp_path: Path) -> None:
    dm = FaceDataModule(synthetic_size=20, image_size=64, cache_dir=str(tmp_path), num_workers=0)
    faces, landmarks = render_faces(range(16, 18), 64)  # the val split holds seeds 16 and 17
    batch = dm.dataset("val").__getitems__([0, 1])
    assert torch.equal(batch[IMAGE], torch.from_numpy(faces).permute(0, 3, 1, 2))
    assert torch.allclose(batch[LANDMARKS], torch.from_numpy(landmarks))


def test_train_masks_change_with_epoch_but_eval_masks_do_not(tmp_path: Path) -> None:
    spec = MaskSpec(kind="random_square", min_side=0.25, max_side=0.5)
    dm = FaceDataModule(
        synthetic_size=40,
        image_size=32,
        train_mask=spec,
        val_mask=spec,
        cache_dir=str(tmp_path),
        num_workers=0,
        flip=False,
    )
    raw = dm.dataset("train").__getitems__(list(range(8)))
    e0 = dm.prepare_batch(raw, "train", epoch=0)[MASK]
    e1 = dm.prepare_batch(raw, "train", epoch=1)[MASK]
    assert not torch.equal(e0, e1)
    v0 = dm.prepare_batch(raw, "val", epoch=0)[MASK]
    v1 = dm.prepare_batch(raw, "val", epoch=5)[MASK]
    assert torch.equal(v0, v1)


def test_flip_mirrors_landmarks_with_their_meaning(tmp_path: Path) -> None:
    dm = FaceDataModule(synthetic_size=40, image_size=64, cache_dir=str(tmp_path), num_workers=0)
    raw = dm.dataset("train").__getitems__(list(range(16)))
    torch.manual_seed(0)
    batch = dm.prepare_batch(raw, "train")
    flipped = ~torch.isclose(batch[IMAGE], raw[IMAGE].float() / 127.5 - 1).all(dim=(1, 2, 3))
    assert 0 < int(flipped.sum()) < 16
    lm = batch[LANDMARKS]
    # the subject's right eye stays on the image's left after a flip
    assert torch.all(lm[:, list(RIGHT_EYE), 0].mean(1) < lm[:, list(LEFT_EYE), 0].mean(1))
    original = raw[LANDMARKS][flipped]
    mirrored_mean = 63 - lm[flipped].mean(1)[:, 0]
    assert torch.allclose(mirrored_mean, original.mean(1)[:, 0], atol=1e-4)


def test_unaligned_augmentation_moves_landmarks_with_the_pixels(tmp_path: Path) -> None:
    dm = FaceDataModule(
        synthetic_size=40,
        image_size=64,
        cache_dir=str(tmp_path),
        num_workers=0,
        flip=False,
        unaligned=True,
        rotation=30.0,
        scale=(0.8, 1.2),
        shift=0.1,
    )
    torch.manual_seed(1)
    points = torch.tensor([[20.0, 24.0], [40.0, 30.0], [32.0, 44.0]])
    image = torch.zeros(4, 3, 64, 64, dtype=torch.uint8)
    for x, y in points.long():
        image[:, :, y - 1 : y + 2, x - 1 : x + 2] = 255
    landmarks = torch.zeros(4, 68, 2)
    landmarks[:, :3] = points
    raw = {IMAGE: image, INDEX: torch.arange(4), LANDMARKS: landmarks}
    batch = dm.prepare_batch(raw, "train")
    assert not torch.equal(batch[LANDMARKS][:, :3], landmarks[:, :3])
    for b in range(4):
        for p in range(3):
            x, y = batch[LANDMARKS][b, p]
            xi, yi = int(round(float(x))), int(round(float(y)))
            assert batch[IMAGE][b, 0, yi, xi] > 0.0, (b, p, float(x), float(y))


# ------------------------------------------------------------------ folder layout and cache
def test_folder_split_rules_and_cache_reuse(folder_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dm = folder_dm(folder_root, cache)
    assert {s: len(dm.cached_split(s)) for s in ("train", "val", "test")} == {
        "train": 20,
        "val": 5,
        "test": 5,
    }
    assert dm.cached_split("val").names[0] == "000021.jpg"
    entry = dm.cached_split("train").directory
    stamp = os.stat(entry / "images.npy").st_mtime_ns
    again = folder_dm(folder_root, cache).cached_split("train")
    assert again.directory == entry and os.stat(entry / "images.npy").st_mtime_ns == stamp


@pytest.mark.parametrize(
    "change", [{"image_size": 24}, {"crop_size": 0.5}, {"crop_center": (0.5, 0.5)}]
)
def test_cache_rebuilt_when_crop_or_size_change(folder_root: Path, tmp_path: Path, change) -> None:
    cache = tmp_path / "cache"
    base = folder_dm(folder_root, cache).cached_split("val")
    changed = folder_dm(folder_root, cache, **change).cached_split("val")
    assert changed.directory != base.directory
    assert not np.array_equal(np.asarray(changed.images), np.asarray(base.images))


def test_cache_rebuilt_when_a_file_changes(folder_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    base = folder_dm(folder_root, cache).cached_split("val")
    write_faces(folder_root / "images", 1, start=21, size=(100, 120))
    assert folder_dm(folder_root, cache).cached_split("val").directory != base.directory


def test_percentage_rule(folder_root: Path, tmp_path: Path) -> None:
    dm = folder_dm(folder_root, tmp_path, splits={"train": "0%-90%", "val": "90%-100%"})
    assert len(dm.cached_split("train")) == 27 and len(dm.cached_split("val")) == 3


def test_no_half_written_cache_after_an_error(folder_root: Path, tmp_path: Path) -> None:
    (folder_root / "images" / "000022.jpg").write_bytes(b"not a jpeg")
    cache = tmp_path / "cache"
    with pytest.raises(ImageError, match="000022.jpg"):
        folder_dm(folder_root, cache).cached_split("val")
    assert list(cache.iterdir()) == []


# ------------------------------------------------------------------ CelebA official layout
def make_celeba(root: Path, partition: list[int]) -> None:
    write_faces(root / "img_align_celeba", len(partition), size=(178, 218))
    lines = [f"{i + 1:06d}.jpg {code}" for i, code in enumerate(partition)]
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")


def test_celeba_official_partitions(tmp_path: Path) -> None:
    make_celeba(tmp_path / "celeba", [0] * 6 + [1] * 2 + [2] * 3)
    dm = FaceDataModule(
        root=str(tmp_path / "celeba"),
        image_size=32,
        cache_dir=str(tmp_path / "c"),
        num_workers=0,
        cache_workers=1,
    )
    assert dm.split_names() == ["train", "val", "test"]
    assert [len(dm.cached_split(s)) for s in ("train", "val", "test")] == [6, 2, 3]
    assert dm.cached_split("test").names == ["000009.jpg", "000010.jpg", "000011.jpg"]


def test_celeba_missing_partition_file(tmp_path: Path) -> None:
    make_celeba(tmp_path / "celeba", [0, 1, 2])
    (tmp_path / "celeba" / "list_eval_partition.txt").unlink()
    dm = FaceDataModule(root=str(tmp_path / "celeba"), cache_dir=str(tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        dm.cached_split("train")


def test_celeba_malformed_partition_line(tmp_path: Path) -> None:
    make_celeba(tmp_path / "celeba", [0, 1, 2])
    with open(tmp_path / "celeba" / "list_eval_partition.txt", "a") as fh:
        fh.write("000004.jpg 7\n")
    dm = FaceDataModule(root=str(tmp_path / "celeba"), cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match=":4: expected"):
        dm.cached_split("train")


# ------------------------------------------------------------------ bad input
def test_missing_root(tmp_path: Path) -> None:
    dm = FaceDataModule(root=str(tmp_path / "nowhere"), splits={"train": "all"})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        dm.cached_split("train")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    dm = FaceDataModule(root=str(tmp_path / "empty"), splits={"train": "all"})
    with pytest.raises(FileNotFoundError, match="no images"):
        dm.cached_split("train")


def test_empty_split_is_an_error(folder_root: Path, tmp_path: Path) -> None:
    dm = folder_dm(folder_root, tmp_path, splits={"train": "1-20", "val": "500-600"})
    with pytest.raises(ValueError, match="split 'val' .* is empty"):
        dm.cached_split("train")


def test_overlapping_splits_are_an_error(folder_root: Path, tmp_path: Path) -> None:
    dm = folder_dm(folder_root, tmp_path, splits={"train": "1-20", "val": "15-25"})
    with pytest.raises(ValueError, match="share images"):
        dm.cached_split("val")


def test_unknown_split_names_the_available_ones(folder_root: Path, tmp_path: Path) -> None:
    dm = folder_dm(folder_root, tmp_path, splits={"train": "1-20", "val": "21-30"})
    with pytest.raises(ValueError, match="no 'test' split"):
        dm.cached_split("test")


def test_bad_split_rule(folder_root: Path, tmp_path: Path) -> None:
    dm = folder_dm(folder_root, tmp_path, splits={"train": "first half"})
    with pytest.raises(ValueError, match="first half"):
        dm.cached_split("train")


def test_corrupt_image_names_the_file(folder_root: Path, tmp_path: Path) -> None:
    (folder_root / "images" / "000003.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(ImageError, match="000003.jpg"):
        folder_dm(folder_root, tmp_path).cached_split("train")


def test_corrupt_image_skipped_on_request_and_counted(
    folder_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (folder_root / "images" / "000003.jpg").write_bytes(b"\xff\xd8 broken")
    with caplog.at_level(logging.WARNING):
        split = folder_dm(folder_root, tmp_path, skip_corrupt=True).cached_split("train")
    assert len(split) == 19 and "000003.jpg" not in split.names
    assert "skipped 1 unreadable image(s) of 20" in caplog.text
    assert split.images.shape == (19, 32, 32, 3)


def test_image_smaller_than_the_crop(folder_root: Path, tmp_path: Path) -> None:
    write_faces(folder_root / "images", 1, start=7, size=(40, 20))
    with pytest.raises(ImageError, match=r"000007.jpg \(40x20\) is smaller than the crop"):
        folder_dm(folder_root, tmp_path).cached_split("train")


def test_required_landmarks_missing(folder_root: Path, tmp_path: Path) -> None:
    dm = folder_dm(folder_root, tmp_path, landmarks="required")
    with pytest.raises(FileNotFoundError, match="landmarks annotate"):
        dm.setup("fit")


def test_annotated_landmarks_are_served(folder_root: Path, tmp_path: Path) -> None:
    dm = folder_dm(folder_root, tmp_path)
    split = dm.cached_split("val")
    landmarks = np.random.default_rng(0).uniform(0, 31, size=(5, 68, 2)).astype(np.float32)
    found = np.array([True, True, False, True, True])
    landmarks[2] = np.nan
    split.save_landmarks(landmarks, found)
    batch = folder_dm(folder_root, tmp_path).dataset("val").__getitems__([1, 2])
    assert torch.allclose(batch[LANDMARKS][0], torch.from_numpy(landmarks[1]))
    assert batch[LANDMARKS_FOUND].tolist() == [True, False]
    assert torch.isnan(batch[LANDMARKS][1]).all()


def test_loader_workers_deliver_the_same_batches(folder_root: Path, tmp_path: Path) -> None:
    serial = folder_dm(folder_root, tmp_path, num_workers=0)
    parallel = folder_dm(folder_root, tmp_path, num_workers=2)
    serial.setup("validate")
    parallel.setup("validate")
    for a, b in zip(serial.val_dataloader(), parallel.val_dataloader(), strict=True):
        assert torch.equal(a[IMAGE], b[IMAGE]) and torch.equal(a[INDEX], b[INDEX])


# ------------------------------------------------------------------ real faces
@pytest.mark.data
def test_celeba_half_splits_and_values(celeba_half: Path, tmp_path: Path) -> None:
    dm = FaceDataModule(
        root=str(celeba_half),
        splits={"train": "1-8000", "val": "8001-9000"},
        image_size=64,
        cache_dir=str(tmp_path),
        num_workers=0,
    )
    files = dm._split_files()
    assert len(files["train"]) == 8000 and len(files["val"]) == 1000
    assert files["train"][-1].name == "008000.jpg" and files["val"][0].name == "008001.jpg"
    val = dm.cached_split("val")
    assert val.images.shape == (1000, 64, 64, 3)
    batch = dm.prepare_batch(dm.dataset("val").__getitems__(list(range(16))), "val")
    check_batch(batch)
    assert float(batch[IMAGE].std()) > 0.2  # real, varied faces, not a constant
