"""faceinpaint.io: every file is written whole or not at all, in its own folder, with the umask's mode."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FillsUp
from PIL import Image

from faceinpaint import io


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_get_the_mode_the_umask_gives(tmp_path: Path, umask_027) -> None:
    text = io.write_text("a", tmp_path / "a.txt")
    image = io.save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "a.png")
    with open(tmp_path / "plain.txt", "w") as handle:  # what open() gives
        handle.write("a")
    assert mode(text) == mode(image) == mode(tmp_path / "plain.txt") == 0o640


def test_overwriting_a_file_does_not_narrow_its_mode(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = io.write_text("old", tmp_path / "table.md")
        assert mode(path) == 0o644
        io.write_text("new", path)
        assert mode(path) == 0o644 and path.read_text() == "new"
    finally:
        os.umask(previous)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = io.write_text("good", tmp_path / "results.jsonl")
    with pytest.raises(RuntimeError), io.atomic_write(path) as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


def test_the_temporary_file_is_in_the_destination_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A $TMPDIR on another filesystem would make the rename a copy over the target."""
    elsewhere = tmp_path / "tmpdir"
    elsewhere.mkdir()
    monkeypatch.setenv("TMPDIR", str(elsewhere))
    monkeypatch.setattr("tempfile.tempdir", None)
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(Path(a)), real_replace(a, b)))
    target = tmp_path / "out" / "a.png"
    io.save_image(np.zeros((4, 4), np.uint8), target)
    assert [p.parent for p in renamed] == [target.parent]
    assert Image.open(target).size == (4, 4)


def test_append_jsonl_keeps_earlier_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    io.append_jsonl([{"a": 1}], path)
    io.append_jsonl([{"a": 2}, {"a": 3}], path)
    assert io.read_jsonl(path) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_unknown_image_suffix_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown image suffix '\.xyz'"):
        io.save_image(np.zeros((2, 2), np.uint8), tmp_path / "a.xyz")


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0, 257, 32896, 65535]], dtype=np.uint16), [0, 1, 128, 255]),  # I;16
        (np.array([[0, 257, 32896, 65535]], dtype=np.int32), [0, 1, 128, 255]),  # I
        (np.array([[0.0, 0.5, 1.0, 0.25]], dtype=np.float32), [0, 128, 255, 64]),  # F in 0-1
        (np.array([[0.0, 100.0, 300.0, -5.0]], dtype=np.float32), [0, 100, 255, 0]),  # F in 0-255
        (np.array([[0, 1, 128, 255]], dtype=np.uint8), [0, 1, 128, 255]),  # L unchanged
    ],
)
def test_eight_bit_scales_wide_greyscale_to_8_bits(array: np.ndarray, expected: list) -> None:
    image = io.eight_bit(Image.fromarray(array))
    assert image.mode == "L"
    assert np.asarray(image).tolist() == [expected]


def test_a_16_bit_png_reads_at_its_grey_level(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 4), 200 * 257, dtype=np.uint16)).save(tmp_path / "grey.png")
    with Image.open(tmp_path / "grey.png") as image:
        rgb = np.asarray(io.eight_bit(image).convert("RGB"))
    assert rgb.shape == (4, 4, 3) and (rgb == 200).all()


@pytest.mark.parametrize("writer", ["bytes", "torch.save"])
def test_a_full_disk_is_a_disk_full_error_naming_the_file_and_leaves_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """torch.save raises a RuntimeError ("enforce fail at inline_container.cc") over the OSError."""
    path = io.write_text("old", tmp_path / "last.ckpt")
    monkeypatch.setattr(io.os, "fdopen", lambda fd, mode: FillsUp(fd, limit=1000))
    with pytest.raises(io.DiskFullError) as error, io.atomic_write(path, "wb") as handle:
        if writer == "bytes":
            for _ in range(40):
                handle.write(b"x" * 100)
        else:
            torch.save({"w": torch.zeros(10_000)}, handle)
    message = str(error.value)
    assert message.startswith(f"no space left for {path}: it needs more than ")
    assert "bytes are free there" in message and "\n" not in message
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_require_space_names_the_bytes_needed_and_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = shutil.disk_usage(tmp_path)._replace(free=1000)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: usage)
    io.require_space(tmp_path / "new" / "a.npy", 1000)
    with pytest.raises(io.DiskFullError, match=r"a.npy: it needs 1,001 bytes and 1,000 bytes are"):
        io.require_space(tmp_path / "new" / "a.npy", 1001)
