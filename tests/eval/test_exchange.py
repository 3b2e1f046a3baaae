"""`faceinpaint masks export` and `faceinpaint score`: an outside method on the project's masks."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceinpaint.batch import IMAGE, MASK
from faceinpaint.cli import cli_main
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.masks import MaskSpec
from faceinpaint.eval.exchange import MANIFEST, export_masks
from faceinpaint.eval.protocols import Protocol, sample_indices, task_mask_hash
from faceinpaint.eval.runner import score
from faceinpaint.eval.tasks import task_datamodule
from faceinpaint.io import read_jsonl

REPO = Path(__file__).resolve().parents[2]
N = 5

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    masks = {"center": MaskSpec(kind="center", side=0.5), "pixels": MaskSpec("random_pixels")}
    return Protocol(name="tiny", masks=masks, image_sizes=(32,), seed=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> FaceDataModule:
    cache = tmp_path_factory.mktemp("cache")
    return FaceDataModule(synthetic_size=100, num_workers=0, cache_dir=str(cache))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data, protocol) -> Path:
    out = tmp_path_factory.mktemp("masks")
    export_masks(data, protocol, out=str(out), limit=N, batch_size=2)
    return out


def _originals(data: FaceDataModule, protocol: Protocol, mask: str) -> tuple[torch.Tensor, ...]:
    task = next(t for t in protocol.tasks() if t.mask == mask)
    datamodule = task_datamodule(data, task)
    batch = datamodule.prepare_batch(datamodule.dataset("val").__getitems__(list(range(N))), "test")
    return batch[IMAGE], batch[MASK], datamodule.cached_split("val").names[:N]


def test_export_writes_inputs_masks_and_a_manifest_eval_agrees_with(exported, data, protocol):
    manifest = read_jsonl(exported / MANIFEST)
    assert len(manifest) == 2 * N
    for task in protocol.tasks():
        image, mask, names = _originals(data, protocol, task.mask)
        rows = [row for row in manifest if row["mask"] == task.mask]
        assert [row["image_id"] for row in rows] == [Path(name).stem for name in names]
        assert {row["task_mask_hash"] for row in rows} == {task_mask_hash(task, N)}
        assert all(row["seed"] == 3 and row["split"] == "val" for row in rows)
        for i, row in enumerate(rows):
            written = np.asarray(Image.open(exported / row["mask_file"]))
            assert set(np.unique(written)) <= {0, 255}
            assert np.array_equal(written == 255, mask[i, 0].numpy() > 0.5)
            damaged = np.asarray(Image.open(exported / row["input"])).astype(int)
            hole = written == 255
            assert (damaged[hole] == 128).all(), "hole pixels are mid-grey, nothing of the face"
            original = ((image[i].permute(1, 2, 0).numpy() + 1) * 127.5).round()
            assert np.abs(damaged[~hole] - original[~hole]).max() <= 1


def _write_predictions(folder: Path, exported: Path, pixels_of) -> None:
    for row in read_jsonl(exported / MANIFEST):
        path = folder / row["protocol"] / row["mask"] / f"{row['image_id']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels_of(row)).save(path)


def test_score_rates_the_true_faces_perfect_and_pairs_them_with_the_fills(
    exported, data, protocol, tmp_path
):
    """Predictions that are the original faces score ~100 dB in the hole and beat every fill."""
    originals = {}
    for task in protocol.tasks():
        image, _, names = _originals(data, protocol, task.mask)
        for i, name in enumerate(names):
            unit = ((image[i].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
            originals[(task.mask, Path(name).stem)] = unit
    truth = tmp_path / "truth"
    _write_predictions(truth, exported, lambda row: originals[(row["mask"], row["image_id"])])
    rows = score(data, protocol, str(truth), baselines=("mean",), limit=N, out=str(tmp_path / "o"))
    assert [(row["mask"], row["method"]) for row in rows] == [
        ("center", "truth"), ("center", "mean"), ("pixels", "truth"), ("pixels", "mean"),
    ]  # fmt: skip
    for row in rows:
        assert (
            row["mask_hash"]
            == read_jsonl(exported / MANIFEST)[0 if row["mask"] == "center" else N][
                "task_mask_hash"
            ]
        )
        if row["method"] == "truth":
            assert row["metrics"]["psnr_hole"]["mean"] > 45
            assert row["paired"]["psnr_hole"]["mean"] > 10
    assert (tmp_path / "o" / "tiny.md").read_text().count("truth") >= 2
    assert (tmp_path / "o" / "tiny-center.png").is_file()


def test_export_and_score_take_the_protocols_sample(data, protocol, tmp_path):
    sampled = dataclasses.replace(protocol, sample=6, sample_seed=1)
    chosen = sample_indices(10, 6, seed=1)[:3]  # val: 10 faces
    out = tmp_path / "masks"
    export_masks(data, sampled, out=str(out), limit=3, batch_size=2)
    manifest = read_jsonl(out / MANIFEST)
    names = data.cached_split("val").names
    for task in sampled.tasks():
        rows = [row for row in manifest if row["mask"] == task.mask]
        assert [row["index"] for row in rows] == chosen
        assert [row["image_id"] for row in rows] == [Path(names[i]).stem for i in chosen]
        assert {row["task_mask_hash"] for row in rows} == {task_mask_hash(task, chosen)}
        assert all((row["sample"], row["sample_seed"]) == (6, 1) for row in rows)
    inputs = tmp_path / "inputs"
    _write_predictions(inputs, out, lambda row: np.asarray(Image.open(out / row["input"])))
    scored = score(data, sampled, str(inputs), baselines=(), limit=3, out=str(tmp_path / "o"))
    assert [row["mask_hash"] for row in scored] == [
        task_mask_hash(task, chosen) for task in sampled.tasks()
    ]


def test_score_refuses_missing_and_wrongly_sized_predictions(exported, data, protocol, tmp_path):
    grey = tmp_path / "grey"
    _write_predictions(grey, exported, lambda row: np.full((32, 32, 3), 128, np.uint8))
    victim = next((grey / "tiny" / "pixels").iterdir())
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 5 predictions missing for tiny/pixels"):
        score(data, protocol, str(grey), baselines=(), limit=N, out=str(tmp_path / "o"))
    Image.fromarray(np.zeros((30, 32, 3), np.uint8)).save(victim)
    with pytest.raises(ValueError, match=r"is 32x30 px; the task's faces are 32x32"):
        score(data, protocol, str(grey), baselines=(), limit=N, out=str(tmp_path / "o"))


def test_export_and_score_from_the_command_line(tmp_path, capsys):
    config = str(REPO / "configs/eval/smoke.yaml")
    out = tmp_path / "masks"
    cli_main(["masks", "export", "--config", config, "--limit", "2", "--out", str(out)])
    assert len(read_jsonl(out / MANIFEST)) == 4 * 2
    predictions = tmp_path / "mine"
    shutil.copytree(
        out / "thesis", predictions / "thesis", ignore=shutil.ignore_patterns("*_mask.png")
    )
    rows = cli_main(
        ["score", "--config", config, "--predictions", str(predictions), "--limit", "2"]
        + ["--baselines", "[harmonic]", "--out", str(tmp_path / "scored")]
    )
    assert {row["method"] for row in rows} == {"mine", "harmonic"}
    # the exported inputs themselves, scored: a mid-grey hole, far below a real fill
    mine = [row for row in rows if row["method"] == "mine"]
    assert all(row["metrics"]["psnr_hole"]["mean"] < 20 for row in mine)
