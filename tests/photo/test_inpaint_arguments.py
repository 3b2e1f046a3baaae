"""`faceinpaint inpaint` arguments: negative box corners, boxes off the photo, inverted masks,
the face that holds the hole, the mask threshold in --help."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import two_faces_photo, untrained_vaegan_checkpoint
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.photo.inpaint import InpaintError, inpaint, polarity_hint

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 64 px VAE-GAN with tiny widths."""
    return untrained_vaegan_checkpoint(tmp_path_factory.mktemp("inpaint") / "vaegan.ckpt")


def grey_photo(tmp_path: Path) -> Path:
    Image.fromarray(np.full((120, 100, 3), 128, np.uint8)).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def run(checkpoint: Path, photo: Path, out: Path, *args: str) -> None:
    cli_main(["inpaint", "--checkpoint", str(checkpoint), "--image", str(photo),
              "--out", str(out), "--upsample", "0", "--device", "cpu", *args])  # fmt: skip


def test_a_box_with_negative_corners_parses(checkpoint: Path, tmp_path: Path) -> None:
    """Partly off the photo: clipped, and the run gets as far as looking for the face."""
    with pytest.raises(InpaintError, match="no face found"):
        run(checkpoint, grey_photo(tmp_path), tmp_path / "out.png", "--box", "-5,-5,20,20")


def test_a_box_wholly_outside_the_photo_says_so(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(InpaintError, match="--box -50,-50,20,20 lies wholly outside the 100x120"):
        run(checkpoint, grey_photo(tmp_path), tmp_path / "out.png", "--box", "-50,-50,20,20")
    assert not (tmp_path / "out.png").exists()


def test_an_inverted_mask_gets_a_polarity_hint() -> None:
    hole = np.ones((100, 100), dtype=bool)
    hole[40:60, 40:60] = False  # white = keep, the usual mistake
    assert "is the mask inverted? white = hole" in polarity_hint(hole)
    assert polarity_hint(~hole) == ""


def test_the_help_states_the_mask_threshold(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli_main(["inpaint", "--help"])
    assert "thresholded at 128" in " ".join(capsys.readouterr().out.split())


def test_an_inverted_mask_on_a_face_is_hinted(
    celeba_half: Path, checkpoint: Path, tmp_path: Path
) -> None:
    mask = np.full((109, 89), 255, np.uint8)
    mask[45:65, 30:60] = 0
    Image.fromarray(mask).save(tmp_path / "mask.png")
    with pytest.raises(InpaintError, match="outside the face crop.*is the mask inverted"):
        inpaint(str(checkpoint), str(celeba_half / "images/008001.jpg"), str(tmp_path / "o.png"),
                mask=str(tmp_path / "mask.png"), upsample=0, device="cpu")  # fmt: skip


def test_of_several_faces_the_one_holding_the_hole_is_inpainted(
    celeba_half: Path, checkpoint: Path, tmp_path: Path
) -> None:
    two_faces_photo(celeba_half, tmp_path / "two.png")
    out = tmp_path / "out.png"
    inpaint(str(checkpoint), str(tmp_path / "two.png"), str(out), box="235,100,40,25",
            upsample=0, device="cpu")  # fmt: skip
    changed = (np.asarray(Image.open(tmp_path / "two.png")) != np.asarray(Image.open(out))).any(2)
    assert changed[100:125, 235:275].mean() > 0.9
    assert not changed[:, :190].any()  # the large face is untouched
