"""`faceinpaint inpaint`: only the hole (and its seam) changes; every bad input errors and writes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from helpers import two_faces_photo, untrained_vaegan_checkpoint
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.photo.align import Frame, InpaintError, similarity_transform
from faceinpaint.photo.inpaint import inpaint, read_mask, read_photo
from faceinpaint.photo.paste import feather_weights

PHOTO = "images/008001.jpg"  # 89 x 109; the face crop spans about x 17-72, y 32-86
HOLE_BOX = (30, 45, 30, 20)  # x, y, w, h: eyes to nose, inside the face crop


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 64 px VAE-GAN with tiny widths (random but seeded weights)."""
    return untrained_vaegan_checkpoint(tmp_path_factory.mktemp("inpaint") / "vaegan.ckpt")


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def write(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- geometry
def test_similarity_transform_recovers_a_known_one() -> None:
    angle, scale, shift = 0.3, 0.25, np.array([5.0, -7.0])
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.random.default_rng(0).uniform(0, 500, size=(5, 2))
    target = source @ linear.T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix, np.concatenate([linear, shift[:, None]], axis=1), atol=1e-9)


def test_template_eyes_are_level_and_centred_in_the_frame() -> None:
    right_eye, left_eye, nose, *_ = Frame(64).template()
    assert right_eye[1] == pytest.approx(left_eye[1], abs=0.05)
    assert (right_eye[0] + left_eye[0]) / 2 == pytest.approx(31.5, abs=0.1)
    assert right_eye[1] < nose[1]


def test_feather_weights_are_one_in_the_hole_and_zero_beyond_the_seam() -> None:
    hole = np.zeros((20, 20), dtype=bool)
    hole[8:12, 8:12] = True
    weight = feather_weights(hole, feather=3.0)
    assert (weight[hole] == 1).all()
    # 1 px out: smoothstep(2/3); 2 px out: smoothstep(1/3); from 3 px (= feather) on: 0
    assert weight[8, 7] == pytest.approx(20 / 27, abs=1e-5)
    assert weight[8, 6] == pytest.approx(7 / 27, abs=1e-5)
    assert (weight[:, :6] == 0).all() and (weight[:5] == 0).all()


# ----------------------------------------------------------------------------- real photo
def test_inpaint_changes_only_the_hole_and_its_seam(
    celeba_half: Path, checkpoint: Path, tmp_path: Path
) -> None:
    photo = celeba_half / PHOTO
    out = tmp_path / "result.png"
    x, y, w, h = HOLE_BOX
    cli_main(
        ["inpaint", "--checkpoint", str(checkpoint), "--image", str(photo),
         "--box", f"{x},{y},{w},{h}", "--out", str(out), "--feather", "3", "--upsample", "0",
         "--device", "cpu"]
    )  # fmt: skip
    before, after = rgb(photo), rgb(out)
    assert after.shape == before.shape
    changed = (before != after).any(axis=2)
    seam = np.zeros_like(changed)
    seam[y - 3 : y + h + 3, x - 3 : x + w + 3] = True
    assert not changed[~seam].any()
    assert changed[y : y + h, x : x + w].mean() > 0.9


def test_folder_mode_pairs_masks_by_name_and_reports_the_unpaired(
    celeba_half: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir(), masks.mkdir()
    for name in ("008001", "008003", "008005"):
        (photos / f"{name}.jpg").write_bytes((celeba_half / f"images/{name}.jpg").read_bytes())
    for name in ("008001", "008003"):
        hole = np.zeros((109, 89), dtype=np.uint8)
        hole[50:60, 35:55] = 255
        write(hole, masks / f"{name}.png")
    with pytest.raises(
        InpaintError, match=r"(?s)1 of 3 photos failed.*008005: no mask named 008005"
    ):
        inpaint(str(checkpoint), str(photos), str(out), mask=str(masks), upsample=0, device="cpu")
    assert sorted(p.name for p in out.iterdir()) == ["008001.png", "008003.png"]
    progress = capsys.readouterr().err  # the folder's progress bar: counts and time
    assert "inpaint: 100%" in progress and "3/3" in progress


def test_several_faces_inpaints_the_one_holding_the_hole_and_says_so(
    celeba_half: Path, checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    two_faces_photo(celeba_half, tmp_path / "two.png")
    out = tmp_path / "out.png"
    with caplog.at_level(logging.WARNING, logger="faceinpaint.photo.inpaint"):
        inpaint(str(checkpoint), str(tmp_path / "two.png"), str(out), box="60,90,60,40",
                upsample=0, device="cpu")  # fmt: skip
    assert "2 faces found" in caplog.text and "inpainting the one holding the hole" in caplog.text
    changed = (rgb(tmp_path / "two.png") != rgb(out)).any(axis=2)
    assert not changed[:, 178:].any()  # the small face is untouched


# ----------------------------------------------------------------------------- bad input
def test_unreadable_photo(checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_text("not an image")
    out = tmp_path / "out.png"
    with pytest.raises(InpaintError, match="cannot read .*photo.jpg as an image"):
        inpaint(str(checkpoint), str(tmp_path / "photo.jpg"), str(out), box="1,1,4,4", device="cpu")
    assert not out.exists()


@pytest.mark.parametrize(
    ("mask_shape", "fill", "message"),
    [
        ((50, 50), 255, "is 50x50 but .* is 100x120: the mask must have the photo's size"),
        ((120, 100), 0, "has no hole"),
        ((120, 100), 255, "covers the whole photo: nothing is known"),
    ],
)
def test_bad_masks(
    checkpoint: Path, tmp_path: Path, mask_shape: tuple[int, int], fill: int, message: str
) -> None:
    photo = write(np.full((120, 100, 3), 128), tmp_path / "photo.png")
    mask = write(np.full(mask_shape, fill), tmp_path / "mask.png")
    out = tmp_path / "out.png"
    with pytest.raises(InpaintError, match=message):
        inpaint(str(checkpoint), str(photo), str(out), mask=str(mask), device="cpu")
    assert not out.exists()


def test_no_face(checkpoint: Path, tmp_path: Path) -> None:
    photo = write(np.full((120, 100, 3), 128), tmp_path / "photo.png")
    out = tmp_path / "out.png"
    with pytest.raises(InpaintError, match="no face found"):
        inpaint(str(checkpoint), str(photo), str(out), box="40,40,20,20", upsample=0, device="cpu")
    assert not out.exists()


def test_hole_outside_the_face_crop(celeba_half: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    with pytest.raises(
        InpaintError, match="100 of the 100 hole pixels .* lie outside the face crop"
    ):
        inpaint(str(checkpoint), str(celeba_half / PHOTO), str(out), box="0,0,10,10",
                upsample=0, device="cpu")  # fmt: skip
    assert not out.exists()


def test_checkpoint_of_the_wrong_kind(tmp_path: Path) -> None:
    from faceinpaint.landmarks.network import LandmarkNet

    photo = write(np.full((120, 100, 3), 128), tmp_path / "photo.png")
    landmarks = tmp_path / "landmarks.ckpt"
    LandmarkNet(widths=(4, 4)).save(landmarks)
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    out = tmp_path / "out.png"
    with pytest.raises(
        InpaintError,
        match="is a landmark network checkpoint, expected a Context Encoder .* or DCGAN .* or VAE-GAN",
    ):
        inpaint(str(landmarks), str(photo), str(out), box="1,1,4,4", device="cpu")
    with pytest.raises(InpaintError, match="not a readable PyTorch checkpoint"):
        inpaint(str(text), str(photo), str(out), box="1,1,4,4", device="cpu")
    assert not out.exists()


def test_existing_output_is_kept_without_overwrite(checkpoint: Path, tmp_path: Path) -> None:
    photo = write(np.full((120, 100, 3), 128), tmp_path / "photo.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    with pytest.raises(InpaintError, match="out.png exist.*pass --overwrite"):
        inpaint(str(checkpoint), str(photo), str(out), box="1,1,4,4", device="cpu")
    assert out.read_bytes() == b"keep me"


def test_read_photo_drops_alpha_with_a_note_and_scales_16_bit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rgba = np.zeros((6, 5, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 90, 0  # fully transparent, colour 90
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(np.full((6, 5), 90 * 257, np.uint16)).save(tmp_path / "grey16.png")
    with caplog.at_level(logging.WARNING, logger="faceinpaint"):
        photo = read_photo(tmp_path / "rgba.png")
    assert photo.shape == (6, 5, 3) and (photo == 90).all()
    assert "rgba.png has an alpha channel (mode RGBA): it is dropped" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="faceinpaint"):
        grey = read_photo(tmp_path / "grey16.png")
    assert (grey == 90).all() and "alpha" not in caplog.text
    mask = np.zeros((6, 5), np.uint16)
    mask[2:4, 1:3] = 65535
    Image.fromarray(mask).save(tmp_path / "mask16.png")
    assert read_mask(tmp_path / "mask16.png", (6, 5), "grey16.png").sum() == 4


@pytest.mark.parametrize(
    "name", ["vaegan-demo.safetensors", "dcgan-demo.safetensors", "ce-demo.safetensors"]
)
def test_weights_trained_on_procedural_faces_say_so_in_one_line(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    from faceinpaint.paths import ASSETS
    from faceinpaint.photo.inpaint import FrameInpainter

    with caplog.at_level(logging.WARNING, logger="faceinpaint.photo.inpaint"):
        FrameInpainter(str(ASSETS / name), device="cpu")
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "trained on the embedded procedural faces, not photos" in warning
    assert "\n" not in warning


def test_overrides_reach_the_method_and_others_are_refused() -> None:
    from faceinpaint.paths import ASSETS
    from faceinpaint.photo.inpaint import FrameInpainter, InpaintError

    dcgan = str(ASSETS / "dcgan-demo.safetensors")
    inpainter = FrameInpainter(dcgan, "cpu", {"candidates": 2, "iterations": 3})
    assert (
        inpainter.model.search_settings.candidates,
        inpainter.model.search_settings.iterations,
    ) == (2, 3)
    with pytest.raises(InpaintError, match="at inference"):
        FrameInpainter(str(ASSETS / "vaegan-demo.safetensors"), "cpu", {"candidates": 2})


# ----------------------------------------------------------------------------- speed
@pytest.mark.parametrize("shift", [(-200.0, -150.0), (30.0, 40.0)])
def test_warping_the_frames_crop_of_a_photo_is_warping_the_photo(shift) -> None:
    """The frame's footprint is cut out of the photo before warping; inside the photo or across
    its edge (where the border repeats), the frame is the same."""
    import cv2

    from faceinpaint.photo.align import warp_to_frame

    noise = np.random.default_rng(0).uniform(0, 255, (30, 40, 3)).astype(np.float32)
    image = cv2.resize(noise, (800, 600), interpolation=cv2.INTER_CUBIC)  # smooth (600, 800, 3)
    angle, scale = 0.2, 1.5  # frame pixels per photo pixel >= 1: no area shrink
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = np.concatenate([linear, np.array(shift)[:, None]], axis=1)
    whole = cv2.warpAffine(
        image, matrix, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    np.testing.assert_allclose(warp_to_frame(image, matrix, 64), whole, atol=1e-3)


def test_a_face_found_without_upsampling_is_not_searched_for_again() -> None:
    from faceinpaint.bench.photo import procedural_photo
    from faceinpaint.photo.align import FaceAligner

    photo, hole = procedural_photo(1600)  # the hole is in the face
    aligner = FaceAligner(upsample=1)
    aligner._load()
    scans: list[int] = []
    detector = aligner._detector
    aligner._detector = lambda image, times: scans.append(times) or detector(image, times)
    aligner.locate(photo, Frame(64), "photo", hole)
    assert scans == [0]
    hole[:] = False
    hole[:100, :100] = True  # in no face: the doubled copy is scanned too
    aligner.locate(photo, Frame(64), "photo", hole)
    assert scans == [0, 0, 1]
