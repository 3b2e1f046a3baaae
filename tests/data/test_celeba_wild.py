"""CelebA in the wild (img_celeba/ + list_bbox_celeba.txt): unaligned faces cropped around their box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.data.cache import ImageError
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.provenance import FaceFrame
from faceinpaint.data.sources import FaceBoxCrop

REPO = Path(__file__).resolve().parents[2]

# name -> (image width, height, box x, y, w, h); each box filled with its own colour
WILD = {
    "000001.jpg": (100, 120, 10, 20, 40, 60),
    "000002.jpg": (140, 90, 110, 10, 30, 40),  # near the right edge: the square shifts left
    "000003.jpg": (90, 130, 20, 30, 50, 50),
    "000004.jpg": (120, 120, 60, 60, 40, 40),
    "000005.jpg": (100, 100, 30, 30, 40, 40),
    "000006.jpg": (110, 100, 20, 10, 50, 50),
}
PARTITION = {"000005.jpg": 1, "000006.jpg": 2}  # the others: train


def write_wild(root: Path, boxes: dict[str, tuple[int, ...]] | None = None) -> Path:
    """A tiny CelebA root in CelebA's own file formats; faces are grey with a coloured box."""
    (root / "img_celeba").mkdir(parents=True)
    lines = [str(len(WILD)), "image_id x_1 y_1 width height"]
    for number, (name, (width, height, x, y, w, h)) in enumerate(WILD.items(), start=1):
        pixels = np.full((height, width, 3), 128, dtype=np.uint8)
        pixels[y : y + h, x : x + w] = (40 * number, 255 - 40 * number, 200)
        Image.fromarray(pixels).save(root / "img_celeba" / name)
        box = (boxes or {}).get(name, (x, y, w, h))
        lines.append(f"{name}  {'  '.join(map(str, box))}")
    (root / "list_bbox_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{name} {PARTITION.get(name, 0)}\n" for name in WILD)
    )
    return root


def wild_data(root: Path, tmp_path: Path, **kwargs) -> FaceDataModule:
    return FaceDataModule(
        root=str(root), layout="celeba-wild", image_size=16, num_workers=0, cache_workers=1,
        cache_dir=str(tmp_path / "cache"), **kwargs,
    )  # fmt: skip


def test_square_is_centred_on_the_box_and_shifted_inside_the_image() -> None:
    assert FaceBoxCrop("a", 10, 20, 40, 60).box(100, 120) == (0.0, 20.0, 60.0, 80.0)
    # centred at x 125 the 40 px square would leave the 140 px image: shifted back to 100..140
    assert FaceBoxCrop("b", 110, 10, 30, 40).box(140, 90) == (100.0, 10.0, 140.0, 50.0)
    # larger than the image's shorter side: shrunk to it
    assert FaceBoxCrop("c", 10, 10, 50, 50, scale=3.0).box(100, 80) == (0.0, 0.0, 80.0, 80.0)


def test_a_box_outside_its_image_is_an_error_naming_it() -> None:
    with pytest.raises(ImageError, match="face box of c.jpg .* lies outside its 100x120 image"):
        FaceBoxCrop("c.jpg", 150, 10, 30, 30).box(100, 120)
    with pytest.raises(ImageError, match="lies outside"):  # mostly outside
        FaceBoxCrop("d.jpg", 80, 10, 60, 30).box(100, 120)


def test_served_faces_are_the_box_squares_on_the_official_partitions(tmp_path: Path) -> None:
    data = wild_data(write_wild(tmp_path / "celeba"), tmp_path)
    assert {s: data.image_names(s) for s in ("val", "test")} == {
        "val": ["000005.jpg"],
        "test": ["000006.jpg"],
    }
    assert data.frame == FaceFrame("face box", 16, (1.0,))
    train = data.cached_split("train")
    assert train.names == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]
    for number, (name, face) in enumerate(zip(train.names, train.images, strict=True), start=1):
        width, height, x, y, w, h = WILD[name]
        x0, y0, x1, y1 = FaceBoxCrop(name, x, y, w, h).box(width, height)
        # the box's pixels, where they land in the 16 px face (away from its edges and JPEG ringing)
        col = int(16 * ((x + w / 2) - x0) / (x1 - x0))
        row = int(16 * ((y + h / 2) - y0) / (y1 - y0))
        colour = np.array((40 * number, 255 - 40 * number, 200))
        assert np.abs(face[row, col].astype(int) - colour).max() < 24, name


def test_other_boxes_make_another_cache_entry(tmp_path: Path) -> None:
    first = wild_data(write_wild(tmp_path / "a"), tmp_path).cached_split("train")
    moved = write_wild(tmp_path / "b", {"000001.jpg": (12, 22, 40, 60)})
    second = wild_data(moved, tmp_path).cached_split("train")
    assert first.directory != second.directory


def test_missing_box_file_and_a_box_outside_are_clear_errors(tmp_path: Path) -> None:
    root = write_wild(tmp_path / "celeba")
    (root / "list_bbox_celeba.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_bbox_celeba.txt"):
        wild_data(root, tmp_path).cached_split("train")

    bad = write_wild(tmp_path / "bad", {"000003.jpg": (200, 30, 50, 50)})
    with pytest.raises(ImageError, match="face box of 000003.jpg .* lies outside its 90x130 image"):
        wild_data(bad, tmp_path).cached_split("train")


def test_an_image_without_a_box_is_named(tmp_path: Path) -> None:
    root = write_wild(tmp_path / "celeba")
    lines = (root / "list_bbox_celeba.txt").read_text().splitlines()
    (root / "list_bbox_celeba.txt").write_text(
        "\n".join(line for line in lines if not line.startswith("000002")) + "\n"
    )
    with pytest.raises(ValueError, match="no face box for 1 image.*000002.jpg"):
        wild_data(root, tmp_path).cached_split("train")


def test_the_matching_protocol_runs_on_the_test_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    root = write_wild(tmp_path / "celeba")
    rows = cli_main(["eval", "--config", "configs/eval/vaegan-paper-wild.yaml", "--data.root",
                     str(root), "--data.cache_dir", str(tmp_path / "cache"), "--baselines",
                     "[mean]", "--device", "cpu", "--out", str(tmp_path / "out")])  # fmt: skip
    assert [(r["split"], r["n"], r["image_size"]) for r in rows] == [("test", 1, 128)]
    assert rows[0]["frame"] == "128 px from a square of 1 x the face box (unaligned)"
