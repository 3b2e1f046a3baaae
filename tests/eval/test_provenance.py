"""What a checkpoint trained on, checked wherever it is used: the frame of its faces (landmark nets,
`faceinpaint eval`) and its training images (eval never scores them unless told, and says so)."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.data.datamodule import FaceDataModule, checkpoint_training_images
from faceinpaint.data.masks import MaskSpec
from faceinpaint.eval.protocols import Protocol
from faceinpaint.eval.runner import evaluate
from faceinpaint.latent_search import SearchSettings
from faceinpaint.lit.loading import read_checkpoint
from faceinpaint.losses.vaegan import LossWeights

REPO = Path(__file__).resolve().parents[2]
SIZE = 32

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def write_faces(folder: Path, count: int, size: tuple[int, int] = (89, 109)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for number in range(1, count + 1):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{number:06d}.png")
    return folder


def folder_data(root: Path, tmp_path: Path, crop: float, splits: dict[str, str]) -> FaceDataModule:
    return FaceDataModule(
        root=str(root), layout="folder", splits=splits, image_size=SIZE, crop_size=crop,
        num_workers=0, cache_workers=1, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip


def checkpoint_with_data(module: pl.LightningModule, data: FaceDataModule, path: Path) -> Path:
    """A checkpoint as a run on ``data`` writes it (the DataModule's settings and state included)."""
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        limit_val_batches=0,
    )  # fmt: skip
    trainer.validate(module, datamodule=data, verbose=False)
    trainer.save_checkpoint(path)
    return path


def tiny_vaegan(landmark: float = 0.0, **kwargs):
    from faceinpaint.lit.vaegan import VAEGANModule

    torch.manual_seed(0)
    return VAEGANModule(
        image_size=SIZE, latent_dim=8, base_channels=4, max_channels=8, num_layers=3,
        critic_base_channels=4, critic_max_channels=8, local_size=16,
        weights=LossWeights(feat=0.0, landmark=landmark), vgg_weights="random",
        **({"stage_boundaries": [1, 2, 3]} | kwargs),
    )  # fmt: skip


TRAINED = {"train": "1-8", "val": "9-12"}
PROTOCOL = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,))


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    return write_faces(tmp_path / "faces", 12)


@pytest.fixture
def vaegan_08(faces: Path, tmp_path: Path) -> str:
    """A VAE-GAN checkpoint of a run on faces 1-8 at crop 0.8."""
    data = folder_data(faces, tmp_path, 0.8, TRAINED)
    return str(checkpoint_with_data(tiny_vaegan(), data, tmp_path / "vaegan.ckpt"))


def landmark_checkpoint(faces: Path, tmp_path: Path, crop: float) -> str:
    from faceinpaint.lit.landmarks import LandmarkModule

    data = folder_data(faces, tmp_path, crop, TRAINED)
    module = LandmarkModule(widths=[4, 4, 4, 4, 4])
    return str(checkpoint_with_data(module, data, tmp_path / f"landmarks-{crop}.ckpt"))


def test_a_landmark_net_of_another_frame_is_refused_naming_both(
    faces: Path, tmp_path: Path
) -> None:
    at_061 = landmark_checkpoint(faces, tmp_path, 0.61)
    at_08 = landmark_checkpoint(faces, tmp_path, 0.8)
    data = folder_data(faces, tmp_path, 0.8, TRAINED)
    trainer = pl.Trainer(accelerator="cpu", logger=False, limit_val_batches=0)
    with pytest.raises(
        ValueError,
        match=r"the VAE-GAN works on faces of 32 px from a 0.8 x width crop at \(0.5, 0.54\) of "
        r"aligned faces, but the landmark network .* learned faces of 32 px from a 0.61 x width",
    ):
        trainer.validate(tiny_vaegan(landmark=1.0, landmark_checkpoint=at_061), data)
    trainer.validate(tiny_vaegan(landmark=1.0, landmark_checkpoint=at_08), data)

    from faceinpaint.lit.dcgan import DCGANModule

    search = DCGANModule(latent_dim=8, ngf=4, ndf=4, image_size=SIZE,
                         search=SearchSettings(landmark_weight=1.0),
                         landmark_checkpoint=at_061)  # fmt: skip
    with pytest.raises(ValueError, match="the latent search works on faces of 32 px from a 0.8"):
        with_test = folder_data(faces, tmp_path, 0.8, TRAINED | {"test": "9-12"})
        pl.Trainer(accelerator="cpu", logger=False, limit_test_batches=0).test(search, with_test)

    with pytest.raises(ValueError, match="the landmark NME of center works on faces of 32 px"):
        evaluate(data, PROTOCOL, baselines=["mean"], landmark_checkpoint=at_061, device="cpu",
                 out=str(tmp_path / "out"))  # fmt: skip


def test_eval_refuses_another_frame_or_takes_the_checkpoints(
    faces: Path, tmp_path: Path, vaegan_08: str
) -> None:
    at_061 = folder_data(faces, tmp_path, 0.61, TRAINED)
    kwargs = dict(vaegan=vaegan_08, baselines=["mean"], device="cpu", grid_samples=2)
    with pytest.raises(
        ValueError,
        match=r"vaegan checkpoint .* was trained on faces of 32 px from a 0.8 x width crop .*; "
        r"protocol 'tiny' \(center\) asks for faces of 32 px from a 0.61 x width crop",
    ):
        evaluate(at_061, PROTOCOL, out=str(tmp_path / "refused"), **kwargs)
    assert not (tmp_path / "refused").exists()

    rows = evaluate(at_061, PROTOCOL, checkpoint_frame=True, out=str(tmp_path / "out"), **kwargs)
    assert [r["config"]["data"]["crop_size"] for r in rows] == [0.8, 0.8]  # the baseline too
    assert {r["frame"] for r in rows} == {
        "32 px from a 0.8 x width crop at (0.5, 0.54) of aligned faces"
    }
    assert "evaluated at the checkpoints' frame" in (tmp_path / "out" / "tiny.md").read_text()


def test_a_checkpoint_restored_onto_data_of_another_frame_is_refused(
    faces: Path, tmp_path: Path, vaegan_08: str
) -> None:
    splits = TRAINED | {"test": "9-12"}
    trainer = pl.Trainer(accelerator="cpu", logger=False, limit_test_batches=0)
    with pytest.raises(ValueError, match=r"trained on faces of 32 px from a 0.8 x width crop .* "
                       r"but this data serves faces of 32 px from a 0.61 x width crop"):  # fmt: skip
        trainer.test(tiny_vaegan(), folder_data(faces, tmp_path, 0.61, splits), ckpt_path=vaegan_08)
    # (loaded as Lightning does, weights_only: the DataModule's settings are plain types)
    trainer.test(tiny_vaegan(), folder_data(faces, tmp_path, 0.8, splits), ckpt_path=vaegan_08)


def test_eval_refuses_training_faces_unless_asked_and_the_row_says_so(
    faces: Path, tmp_path: Path, vaegan_08: str
) -> None:
    # evaluation data whose val split 5-12 holds four of the checkpoint's training faces (1-8)
    data = folder_data(faces, tmp_path, 0.8, {"train": "1-4", "val": "5-12"})
    kwargs = dict(vaegan=vaegan_08, baselines=["mean"], device="cpu", grid_samples=2)
    with pytest.raises(
        ValueError,
        match=r"vaegan checkpoint .* trained on 4 of the 8 evaluated faces of split 'val' "
        r"\(000005.png, 000006.png, 000007.png, \.\.\.; its training set: train split of .*8 images\)",
    ):
        evaluate(data, PROTOCOL, out=str(tmp_path / "refused"), **kwargs)
    rows = evaluate(data, PROTOCOL, allow_train_overlap=True, out=str(tmp_path / "out"), **kwargs)
    assert [(r["method"], r["train_overlap"]) for r in rows] == [("vaegan", 4), ("mean", None)]
    table = (tmp_path / "out" / "tiny.md").read_text()
    assert "**trained on 4/8**" in table and "--allow_train_overlap" in table

    held_out = folder_data(faces, tmp_path, 0.8, TRAINED)
    rows = evaluate(held_out, PROTOCOL, out=str(tmp_path / "held-out"), **kwargs)
    assert rows[0]["train_overlap"] == 0


def test_training_images_survive_a_moved_root_and_older_checkpoints_are_rebuilt(
    faces: Path, tmp_path: Path, vaegan_08: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = read_checkpoint(vaegan_08)
    shutil.move(faces, tmp_path / "elsewhere")  # the recorded identities do not need the files
    recorded, how = checkpoint_training_images(checkpoint)
    assert how == "recorded in the checkpoint"
    assert recorded.overlap(["000008.jpg", "000009.png", "000001.png"]) == [
        "000008.jpg",
        "000001.png",
    ]

    del checkpoint["FaceDataModule"]  # a checkpoint from before the record
    assert checkpoint_training_images(checkpoint)[0] is None  # its root is gone
    shutil.move(tmp_path / "elsewhere", faces)
    rebuilt, how = checkpoint_training_images(checkpoint)
    assert how.startswith("rebuilt") and torch.equal(rebuilt.ids, recorded.ids)


def write_aligned(root: Path) -> Path:
    """A tiny CelebA root (img_align_celeba/ at 178x218): train 1-8, val 9-10, test 11-12."""
    write_faces(root / "img_align_celeba", 12, size=(178, 218))
    for path in (root / "img_align_celeba").iterdir():
        path.rename(path.with_suffix(".jpg"))  # CelebA's names (the files stay PNG inside)
    codes = {**{n: 0 for n in range(1, 9)}, 9: 1, 10: 1, 11: 2, 12: 2}
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{n:06d}.jpg {code}\n" for n, code in codes.items())
    )
    return root


@pytest.mark.parametrize("name", ["thesis-celeba", "free-form-celeba", "vaegan-paper-celeba"])
def test_celeba_test_partition_protocols_run_on_a_tiny_celeba(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (vaegan-paper-wild: tests/data/test_celeba_wild.py)
    monkeypatch.chdir(REPO)
    root = write_aligned(tmp_path / "celeba")
    rows = cli_main(["eval", "--config", f"configs/eval/{name}.yaml", "--data.root", str(root),
                     "--data.cache_dir", str(tmp_path / "cache"), "--baselines", "[mean]",
                     "--device", "cpu", "--out", str(tmp_path / "out")])  # fmt: skip
    assert rows and {(r["split"], r["n"]) for r in rows} == {("test", 2)}  # the test partition
    assert {r["frame"].split(" from ")[1] for r in rows} <= {
        "a 0.61 x width crop at (0.5, 0.54) of aligned faces",
        "a 0.8 x width crop at (0.5, 0.54) of aligned faces",
    }
