"""The decoded-image cache under kills: SIGTERM cleans up, dead builds' leftovers go, live ones stay;
a partition file naming a missing image is an error naming the line."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faceinpaint.io
from faceinpaint.data import cache as cache_module
from faceinpaint.data.cache import (
    LOCK_FILE,
    ImageError,
    build_from_arrays,
    remove_stale_temporaries,
)
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.io import DiskFullError

REPO = Path(__file__).resolve().parents[2]


def write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (109, 89, 3), dtype=np.uint8)).save(folder / name)


def test_partition_naming_a_missing_image_names_the_line(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    write_images(root / "img_align_celeba", [f"{i:06d}.jpg" for i in range(1, 7)])
    lines = ["000001.jpg 0", "000002.jpg 0", "999999.jpg 0", "000003.jpg 0", "000004.jpg 1"]
    lines += ["000005.jpg 2", "000006.jpg 2"]  # the missing one is neither first nor last
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    dm = FaceDataModule(root=str(root), cache_dir=str(tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition.txt:3 names 999999.jpg"):
        dm.cached_split("train")


def entry_files(n: int = 4):
    return lambda: (np.zeros((n, 8, 8, 3), np.uint8), None)


def test_a_dead_builds_folder_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    dead, live = tmp_path / "abc.tmp1", tmp_path / "def.tmp2"
    for folder in (dead, live):
        folder.mkdir()
        (folder / LOCK_FILE).touch()
        (folder / "images.npy").write_bytes(b"x" * 100)
    holder = os.open(live / LOCK_FILE, os.O_RDWR)  # a build in progress holds its lock
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        build_from_arrays(tmp_path / "entry", entry_files(), ["a", "b", "c", "d"], {})
        assert not dead.exists()
        assert (live / "images.npy").exists()
    finally:
        os.close(holder)
    assert remove_stale_temporaries(tmp_path) == [live]  # its build ended
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]
    assert sorted(p.name for p in (tmp_path / "entry").iterdir()) == [
        "images.npy",
        "meta.json",
        "names.txt",
    ]


def test_sigterm_during_prepare_removes_the_temporary_folder_and_exits_nonzero(
    tmp_path: Path,
) -> None:
    write_images(tmp_path / "faces" / "images", [f"{i:06d}.jpg" for i in range(1, 41)])
    script = textwrap.dedent(
        f"""
        import sys, time
        import faceinpaint.data.cache as cache
        real = cache.load_crop
        def slow(path, crop, size):
            print("decoding", flush=True)
            time.sleep(0.05)
            return real(path, crop, size)
        cache.load_crop = slow
        from faceinpaint.data.datamodule import FaceDataModule
        FaceDataModule(root={str(tmp_path / "faces")!r}, splits={{"train": "all"}}, image_size=16,
                       cache_dir={str(tmp_path / "cache")!r}, cache_workers=1).prepare_data()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout.readline().strip() == b"decoding"
    assert list((tmp_path / "cache").rglob("*.tmp*"))  # mid-build
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    assert not list((tmp_path / "cache").rglob("*.tmp*"))


def test_a_tiny_image_is_refused_unless_the_minimum_is_lowered(tmp_path: Path) -> None:
    folder = tmp_path / "faces"
    write_images(folder, ["000001.jpg", "000002.jpg"])
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / "000003.png")
    options = dict(root=str(folder), splits={"train": "all"}, image_size=64, cache_workers=1)
    dm = FaceDataModule(**options, cache_dir=str(tmp_path / "c1"))
    with pytest.raises(ImageError, match=r"000003.png \(2x2\) gives a 1 px crop, below the 16 px"):
        dm.prepare_data()
    lowered = FaceDataModule(**options, cache_dir=str(tmp_path / "c2"), min_crop_side=0)
    assert len(lowered.cached_split("train")) == 3


def test_a_16_bit_png_is_cached_at_its_grey_level_not_white(tmp_path: Path) -> None:
    """PIL's convert("RGB") clips 16-bit greyscale at 255: a mid-grey 16-bit face read as white."""
    folder = tmp_path / "faces"
    folder.mkdir()
    level = np.full((64, 64), 100 * 257, dtype=np.uint16)  # 8-bit grey 100 in 16 bits
    Image.fromarray(level).save(folder / "000001.png")
    with Image.open(folder / "000001.png") as written:
        assert written.mode.startswith("I")  # a real 16-bit PNG
    dm = FaceDataModule(
        root=str(folder),
        splits={"train": "all"},
        image_size=16,
        crop_size=1.0,
        crop_center=(0.5, 0.5),
        cache_dir=str(tmp_path / "c"),
        cache_workers=1,
    )
    images = dm.cached_split("train").images
    assert images.shape == (1, 16, 16, 3)
    assert np.abs(images.astype(np.float64) - 100).max() <= 1


@pytest.mark.parametrize("fault", ["free space", "fallocate"])
def test_a_full_disk_stops_the_build_before_decoding_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """A memory map over a full disk would be killed by SIGBUS at its first write."""
    write_images(tmp_path / "faces", [f"{i:06d}.jpg" for i in range(1, 5)])
    needs = 4 * 16 * 16 * 3 + 4096  # the images and a bound on the .npy header
    if fault == "free space":
        usage = shutil.disk_usage(tmp_path)._replace(free=needs - 1)
        monkeypatch.setattr(faceinpaint.io.shutil, "disk_usage", lambda path: usage)
        message = rf"it needs {needs:,} bytes and {needs - 1:,} bytes are free"
    else:

        def full(fd: int, offset: int, length: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(cache_module.os, "posix_fallocate", full)
        message = rf"images.npy: it needs {needs - 4096 + 128:,} bytes"  # the header is 128 bytes
    decoded = []
    monkeypatch.setattr(cache_module, "load_crop", lambda *args: decoded.append(args))
    dm = FaceDataModule(
        root=str(tmp_path / "faces"),
        splits={"train": "all"},
        image_size=16,
        cache_dir=str(tmp_path / "cache"),
        cache_workers=1,
    )
    with pytest.raises(DiskFullError, match=rf"no space left for .*{message}"):
        dm.prepare_data()
    assert decoded == []
    assert list((tmp_path / "cache").iterdir()) == []
