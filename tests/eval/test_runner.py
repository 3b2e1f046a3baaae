"""`faceinpaint eval`: hand-computed metrics, identical masks for every method, every output written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.masks import MaskSpec
from faceinpaint.eval.protocols import Protocol, sample_indices, task_mask_hash
from faceinpaint.eval.runner import evaluate
from faceinpaint.io import read_jsonl
from faceinpaint.latent_search import SearchSettings
from faceinpaint.losses.vaegan import LossWeights

REPO = Path(__file__).resolve().parents[2]
SIZE = 32


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def save_checkpoint(module: pl.LightningModule, path: Path) -> Path:
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained 32 px VAE-GAN, DCGAN and Context Encoder with tiny widths (weights are seeded,
    not trained)."""
    from faceinpaint.lit.context_encoder import ContextEncoderModule
    from faceinpaint.lit.dcgan import DCGANModule
    from faceinpaint.lit.vaegan import VAEGANModule

    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    vaegan = VAEGANModule(
        image_size=SIZE, latent_dim=8, base_channels=4, max_channels=8, num_layers=3,
        critic_base_channels=4, critic_max_channels=8, local_size=16,
        weights=LossWeights(feat=0.0, landmark=0.0), vgg_weights="random", stage_boundaries=[1, 2, 3],
    )  # fmt: skip
    dcgan = DCGANModule(
        latent_dim=8,
        ngf=4,
        ndf=4,
        image_size=SIZE,
        num_samples=4,
        search=SearchSettings(candidates=2, iterations=2),
    )
    ce = ContextEncoderModule(
        image_size=SIZE, base_channels=4, max_channels=8, bottleneck=8, discriminator_channels=4
    )
    return {
        "vaegan": save_checkpoint(vaegan, folder / "vaegan.ckpt"),
        "dcgan": save_checkpoint(dcgan, folder / "dcgan.ckpt"),
        "ce": save_checkpoint(ce, folder / "ce.ckpt"),
    }


def embedded(tmp_path: Path) -> FaceDataModule:
    # 40 faces: train 32, val 4
    return FaceDataModule(
        root=None, synthetic_size=40, num_workers=0, cache_dir=str(tmp_path / "cache")
    )


PROTOCOL = Protocol(
    "tiny",
    {"center": MaskSpec("center"), "square": MaskSpec("random_square", min_side=0.25)},
    image_sizes=(SIZE,),
)


def test_hole_metrics_of_mean_fill_match_a_hand_computation(tmp_path: Path) -> None:
    # Faces whose left half is grey level 64 and right half 191: the left-half hole is filled
    # with the known mean 191, so every hole value is off by 127/255.
    faces = tmp_path / "faces"
    faces.mkdir()
    pixels = np.full((SIZE, SIZE, 3), 191, dtype=np.uint8)
    pixels[:, : SIZE // 2] = 64
    for number in range(1, 9):
        Image.fromarray(pixels).save(faces / f"{number:06d}.png")
    data = FaceDataModule(
        root=str(faces), layout="folder", splits={"train": "1-4", "val": "5-8"},
        crop_center=(0.5, 0.5), crop_size=1.0, num_workers=0, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    protocol = Protocol("halves", {"left": MaskSpec("left")}, image_sizes=(SIZE,))
    (row,) = evaluate(data, protocol, baselines=["mean"], out=str(tmp_path / "out"), device="cpu")

    error = 127 / 255
    known, hole = 191 / 255, 64 / 255
    c1 = 0.01**2
    metrics = row["metrics"]
    assert metrics["psnr_hole"]["mean"] == pytest.approx(-20 * math.log10(error), abs=1e-4)
    # the hole is half the image, so the whole-image MSE is half the hole's
    assert metrics["psnr"]["mean"] == pytest.approx(
        -20 * math.log10(error) + 10 * math.log10(2), abs=1e-4
    )
    # constant boxes: SSIM = luminance term only (float32 variances of constants are ~1e-7,
    # against c2 = 9e-4: a few 1e-4 of slack)
    ssim_hole = (2 * known * hole + c1) / (known**2 + hole**2 + c1)
    assert metrics["ssim_hole"]["mean"] == pytest.approx(ssim_hole, abs=5e-4)
    assert metrics["psnr_hole"]["n"] == 4
    assert metrics["psnr_hole"]["std"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["psnr_hole"]["ci95"] == pytest.approx(0.0, abs=1e-4)


def test_eval_writes_rows_table_and_grids_with_one_mask_hash_per_task(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    rows = evaluate(
        embedded(tmp_path), PROTOCOL, vaegan=str(checkpoints["vaegan"]),
        dcgan=[str(checkpoints["dcgan"])], baselines=["mean", "telea", "nn"], nn_bank_size=8,
        batch_size=3, grid_samples=3, device="cpu", out=str(out),
    )  # fmt: skip
    methods = ["vaegan", "dcgan", "mean", "telea", "nn"]
    assert [(r["mask"], r["method"]) for r in rows] == [
        (mask, method) for mask in ("center", "square") for method in methods
    ]
    assert read_jsonl(out / "results.jsonl") == json.loads(json.dumps(rows))
    for task in PROTOCOL.tasks():
        task_rows = [r for r in rows if r["mask"] == task.mask]
        # every method saw exactly the protocol's masks of faces 0..3, served in batches of 3
        assert {r["mask_hash"] for r in task_rows} == {task_mask_hash(task, 4)}
    assert len({r["mask_hash"] for r in rows}) == 2
    for row in rows:
        assert row["n"] == 4 and row["git_revision"] and row["config"]["protocol"]["name"] == "tiny"
        for metric in ("psnr", "ssim", "psnr_hole", "ssim_hole"):
            assert set(row["metrics"][metric]) >= {"mean", "std", "max", "ci95"}
        assert row["seconds_per_face"] > 0
    assert rows[0]["checkpoint"] == str(checkpoints["vaegan"])
    assert rows[4]["config"]["method"]["bank_size"] == 8
    # raw output: a network's whole image differs from its composite outside the hole, not in
    # it (pasted); a classical fill outputs nothing but its result
    for row in rows:
        metrics = row["metrics"]
        same_hole = metrics["psnr_hole_raw"]["mean"] == pytest.approx(metrics["psnr_hole"]["mean"])
        assert same_hole
        if row["method"] in ("vaegan", "dcgan"):
            assert metrics["psnr_raw"]["mean"] < metrics["psnr"]["mean"] - 1
        else:
            assert metrics["psnr_raw"] == metrics["psnr"] and metrics["ssim_raw"] == metrics["ssim"]

    table = (out / "tiny.md").read_text()
    assert "| hole SSIM | SSIM (torchmetrics default) | raw PSNR (dB) | raw SSIM |" in table
    assert "| raw hole PSNR (dB) | raw hole SSIM | s / face |" in table
    assert "Revision:" in table
    assert sum(line.startswith("| center |") for line in table.splitlines()) == 5
    mean = rows[2]["metrics"]["psnr_hole"]
    assert f"{mean['mean']:.2f} ± {mean['ci95']:.2f} ({mean['max']:.2f})" in table

    for mask in ("center", "square"):
        with Image.open(out / f"tiny-{mask}.png") as grid:
            # original, masked, 5 methods; 3 faces; 2 px padding; 96 px labels
            assert grid.size == (96 + 3 * (SIZE + 2) + 2, 7 * (SIZE + 2) + 2)
        with Image.open(out / f"tiny-{mask}-search.png") as search_plot:  # the DCGAN's loss
            assert search_plot.size[0] > 200
    with Image.open(out / "tiny.png") as bars:  # bar chart: hole PSNR and SSIM per mask
        assert bars.size[0] > 400


def test_rows_append_and_a_changed_mask_hash_is_refused(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    kwargs = dict(baselines=["mean"], device="cpu", out=str(out), grid_samples=2)
    evaluate(embedded(tmp_path), PROTOCOL, **kwargs)
    evaluate(embedded(tmp_path), PROTOCOL, vaegan=str(checkpoints["vaegan"]), **kwargs)
    rows = read_jsonl(out / "results.jsonl")
    assert [r["method"] for r in rows] == ["mean", "mean", "vaegan", "mean", "vaegan", "mean"]

    rows[0]["mask_hash"] = "0" * 64  # as if an earlier run had seen other masks
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(ValueError, match="mask hash mismatch for protocol 'tiny', mask 'center'"):
        evaluate(embedded(tmp_path), PROTOCOL, **kwargs)
    assert (out / "results.jsonl").read_bytes() == before


def test_checkpoint_of_the_wrong_kind_is_refused(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    with pytest.raises(ValueError, match="is a DCGAN latent-search checkpoint.*expected a VAE-GAN"):
        evaluate(embedded(tmp_path), PROTOCOL, vaegan=str(checkpoints["dcgan"]), baselines=[],
                 out=str(tmp_path / "out"))  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_another_size_errors_unless_skipping_is_asked(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    at_64 = Protocol("at64", {"center": MaskSpec("center")}, image_sizes=(64,))
    with pytest.raises(ValueError, match="works at 32 px; protocol 'at64' is at \\[64\\] px"):
        evaluate(embedded(tmp_path), at_64, vaegan=str(checkpoints["vaegan"]), baselines=["mean"],
                 out=str(tmp_path / "out"))  # fmt: skip
    rows = evaluate(
        embedded(tmp_path), at_64, vaegan=str(checkpoints["vaegan"]), baselines=["mean"],
        skip_mismatched=True, out=str(tmp_path / "out"), grid_samples=2,
    )  # fmt: skip
    assert [r["method"] for r in rows] == ["mean"]
    assert "skipped: vaegan checkpoint" in (tmp_path / "out" / "at64.md").read_text()


@pytest.mark.parametrize(
    "name",
    ["thesis", "thesis-sample", "vaegan-paper", "free-form", "smoke", "thesis-celeba",
     "vaegan-paper-celeba", "free-form-celeba", "vaegan-paper-wild"],
)  # fmt: skip
def test_eval_configs_parse(
    name: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["eval", "--config", f"configs/eval/{name}.yaml", "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "protocol:" in printed and "masks:" in printed


def test_landmark_nme_is_that_of_the_landmark_network_on_result_and_original(
    tmp_path: Path,
) -> None:
    from faceinpaint.eval.tasks import task_datamodule
    from faceinpaint.landmarks.network import LandmarkNet
    from faceinpaint.losses.landmark import landmark_nme
    from faceinpaint.ops.fills import mean_fill

    torch.manual_seed(0)
    net = LandmarkNet(widths=(4, 4, 4, 4, 4)).eval()
    net.save(tmp_path / "landmarks.ckpt")
    data = embedded(tmp_path)
    protocol = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,))
    (row,) = evaluate(data, protocol, baselines=["mean"], landmark_checkpoint=str(tmp_path / "landmarks.ckpt"),
                      device="cpu", out=str(tmp_path / "out"), grid_samples=2)  # fmt: skip

    (task,) = protocol.tasks()
    datamodule = task_datamodule(data, task)
    batch = datamodule.dataset("val").__getitems__([0, 1, 2, 3])
    batch = datamodule.prepare_batch(batch, "test")
    image, mask = batch["image"], batch["mask"]
    with torch.no_grad():
        expected = landmark_nme(net(mean_fill(image * (1 - mask), mask))[1], net(image)[1])
    assert row["metrics"]["nme"]["mean"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert row["metrics"]["nme"]["n"] == 4
    assert "landmark NME" in (tmp_path / "out" / "tiny.md").read_text()


def test_dcgan_search_overrides_name_the_row_and_change_the_result(
    tmp_path: Path,
) -> None:
    from faceinpaint.landmarks.network import LandmarkNet
    from faceinpaint.lit.dcgan import DCGANModule

    torch.manual_seed(0)
    net = LandmarkNet(widths=(4, 4, 4, 4, 4)).eval()
    with torch.no_grad():  # peaked heatmaps: landmarks that move with the image, so a gradient
        net.head.weight.mul_(200)
    net.save(tmp_path / "landmarks.ckpt")
    dcgan = DCGANModule(
        latent_dim=8, ngf=4, ndf=4, image_size=SIZE, num_samples=4,
        search=SearchSettings(candidates=2, iterations=3, lr=0.1),
        landmark_checkpoint=str(tmp_path / "landmarks.ckpt"),
    )  # fmt: skip
    with torch.no_grad():  # an untrained generator barely depends on z; make it
        for weight in dcgan.generator.parameters():
            if weight.ndim == 4:
                weight.mul_(25)
    path = str(save_checkpoint(dcgan, tmp_path / "dcgan.ckpt"))
    protocol = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,))
    out = str(tmp_path / "out")
    kwargs = dict(dcgan=path, baselines=[], device="cpu", out=out, grid_samples=2)
    (plain,) = evaluate(embedded(tmp_path), protocol, **kwargs)
    (with_term,) = evaluate(
        embedded(tmp_path), protocol, overrides={"landmark_weight": 50.0}, **kwargs
    )
    assert (plain["method"], with_term["method"]) == ("dcgan", "dcgan+landmark")
    assert with_term["config"]["method"]["landmark_weight"] == 50.0
    # same masks, same starts: only the landmark term differs, and it moves the result
    assert plain["mask_hash"] == with_term["mask_hash"]
    assert plain["metrics"]["psnr"]["mean"] != with_term["metrics"]["psnr"]["mean"]
    table = (tmp_path / "out" / "tiny.md").read_text()
    assert "dcgan+landmark" in table

    (blended,) = evaluate(
        embedded(tmp_path), protocol, overrides={"poisson_iterations": 20}, **kwargs
    )
    assert blended["method"] == "dcgan+poisson"
    assert blended["metrics"]["psnr"]["mean"] != plain["metrics"]["psnr"]["mean"]

    with pytest.raises(ValueError, match="poisson_iterations must be >= 0"):
        evaluate(embedded(tmp_path), protocol, overrides={"poisson_iterations": -1}, **kwargs)
    with pytest.raises(ValueError, match="landmark_weight must be >= 0"):
        evaluate(embedded(tmp_path), protocol, overrides={"landmark_weight": -1.0}, **kwargs)
    with pytest.raises(ValueError, match=r"--overrides \['num_candidates'\]: no checkpoint"):
        evaluate(embedded(tmp_path), protocol, overrides={"num_candidates": 2}, **kwargs)
    (tmp_path / "landmarks.ckpt").unlink()
    with pytest.raises(FileNotFoundError):
        evaluate(embedded(tmp_path), protocol, overrides={"landmark_weight": 1.0},
                 **(kwargs | {"out": str(tmp_path / "other")}))  # fmt: skip
    assert not (tmp_path / "other").exists()


def test_oracle_rows_see_the_original_and_bound_the_methods(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    from faceinpaint.eval.methods import CheckpointSpec, checkpoint_method
    from faceinpaint.eval.tasks import task_datamodule

    protocol = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,))
    data = embedded(tmp_path)
    rows = evaluate(
        data, protocol, vaegan=str(checkpoints["vaegan"]), dcgan=str(checkpoints["dcgan"]),
        baselines=[], oracles=True, device="cpu", out=str(tmp_path / "out"), grid_samples=2,
    )  # fmt: skip
    assert [r["method"] for r in rows] == ["vaegan", "vaegan-oracle", "dcgan", "dcgan-oracle"]
    assert "oracle" in (tmp_path / "out" / "tiny.md").read_text()

    # vaegan-oracle: the network's output for the unmasked face, pasted into the hole
    (task,) = protocol.tasks()
    datamodule = task_datamodule(data, task)
    batch = datamodule.prepare_batch(datamodule.dataset("val").__getitems__([0, 1, 2, 3]), "test")
    image, mask, index = batch["image"], batch["mask"], batch["index"]
    spec = CheckpointSpec(str(checkpoints["vaegan"]))
    oracle = checkpoint_method(spec, torch.device("cpu"), oracle=True)
    with torch.no_grad():
        expected = oracle.fill(image, mask, index)
        hole = mask.bool().expand_as(image)
        mse = ((expected - image) / 2).pow(2).masked_fill(~hole, 0).sum((1, 2, 3))
        psnr = -10 * torch.log10(mse / hole.sum((1, 2, 3)))
    assert rows[1]["metrics"]["psnr_hole"]["mean"] == pytest.approx(float(psnr.mean()), rel=1e-4)


@pytest.mark.parametrize("kind", ["vaegan", "ce"])
def test_feed_forward_poisson_blending_keeps_known_pixels_and_names_the_row(
    tmp_path: Path, checkpoints: dict[str, Path], kind: str
) -> None:
    from faceinpaint.eval.methods import CheckpointSpec, checkpoint_method
    from faceinpaint.eval.tasks import task_datamodule
    from faceinpaint.lit.inference import load_inpainter
    from faceinpaint.ops.poisson import poisson_blend

    protocol = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,))
    data = embedded(tmp_path)
    kwargs = dict(checkpoints=[str(checkpoints[kind])], baselines=[], device="cpu", grid_samples=2)
    (pasted,) = evaluate(data, protocol, out=str(tmp_path / "a"), **kwargs)
    (blended,) = evaluate(
        data, protocol, overrides={"poisson_iterations": 50}, out=str(tmp_path / "b"), **kwargs
    )
    assert (pasted["method"], blended["method"]) == (kind, f"{kind}+poisson")
    assert blended["config"]["method"]["poisson_iterations"] == 50
    assert blended["mask_hash"] == pasted["mask_hash"]
    assert blended["metrics"]["psnr_hole"]["mean"] != pasted["metrics"]["psnr_hole"]["mean"]

    (task,) = protocol.tasks()
    datamodule = task_datamodule(data, task)
    batch = datamodule.prepare_batch(datamodule.dataset("val").__getitems__([0, 1, 2]), "test")
    image, mask, index = batch["image"], batch["mask"], batch["index"]
    damaged = image.masked_fill(mask.bool(), 0.0)
    blend = CheckpointSpec(str(checkpoints[kind]), {"poisson_iterations": 50})
    method = checkpoint_method(blend, torch.device("cpu"))
    model = load_inpainter(str(checkpoints[kind]))  # the checkpoint's own setting: pasted
    assert model.hparams.poisson_iterations == 0
    with torch.no_grad():
        result = method(damaged, mask, index)
        output = model.inpaint_parts(damaged, mask, index)[0]
    known = ~mask.bool().expand_as(image)
    assert torch.equal(result[known], image[known])  # the known pixels stay as they are
    assert torch.allclose(result, poisson_blend(output, damaged, mask, 50))
    with pytest.raises(ValueError, match="poisson_iterations must be >= 0"):
        checkpoint_method(
            CheckpointSpec(blend.path, {"poisson_iterations": -1}), torch.device("cpu")
        )
    with pytest.raises(ValueError, match="takes only"):
        load_inpainter(str(checkpoints[kind]), iterations=3)


def test_rows_of_one_method_get_distinct_names_before_any_face(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    """One file pasted and blended, with oracles: one oracle row (the oracle takes no blending);
    two files of one method: each row named by its file; a file listed twice: an error."""
    protocol = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,))
    data = embedded(tmp_path)
    kwargs = dict(baselines=[], device="cpu", grid_samples=2, limit=4, quiet=True)
    ce = str(checkpoints["ce"])
    blended = {"path": ce, "overrides": {"poisson_iterations": 20}}
    rows = evaluate(data, protocol, [ce, blended], oracles=True, out=str(tmp_path / "a"), **kwargs)
    assert [row["method"] for row in rows] == ["ce", "ce-oracle", "ce+poisson"]
    copy = tmp_path / "ce-later.ckpt"
    copy.write_bytes(Path(ce).read_bytes())
    rows = evaluate(data, protocol, [ce, str(copy)], out=str(tmp_path / "b"), **kwargs)
    assert [row["method"] for row in rows] == ["ce@ce", "ce@ce-later"]
    assert rows[0]["metrics"] == rows[1]["metrics"]
    with pytest.raises(ValueError, match="listed twice with the same settings"):
        evaluate(data, protocol, [ce, ce], out=str(tmp_path / "c"), **kwargs)
    assert not (tmp_path / "c").exists()  # refused before any face


def test_eval_opens_its_own_offline_wandb_run_grouped_with_training(
    tmp_path: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint trained under wandb (its run recorded by the CLI's config callback) makes
    eval open a run of its own: job_type eval, the training run's group, the protocol's masks,
    seed and limit in its config, table and metrics. Offline it has no model artifact to use."""
    from helpers import finish_wandb_runs

    from faceinpaint.eval.wandb_files import read_records, run_files

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    checkpoint = torch.load(checkpoints["vaegan"], weights_only=False)
    checkpoint["wandb_run"] = {"entity": None, "project": "faceinpaint-test", "id": "train123", "name": "vaegan-smoke", "group": "vaegan-smoke", "model_artifact": "model-train123"}  # fmt: skip
    trained = tmp_path / "trained.ckpt"
    torch.save(checkpoint, trained)
    protocol = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,), seed=7)
    common = {"data": embedded(tmp_path), "protocol": protocol, "baselines": ["mean"], "device": "cpu", "limit": 4}  # fmt: skip

    evaluate(vaegan=str(checkpoints["vaegan"]), out=str(tmp_path / "plain"), **common)
    assert not (tmp_path / "plain" / "wandb").exists()  # no wandb training run, no --wandb

    evaluate(vaegan=str(trained), out=str(tmp_path / "out"), **common)
    finish_wandb_runs(tmp_path / "out")
    records = list(read_records(*run_files(tmp_path / "out")))
    (run,) = [record.run for record in records if record.WhichOneof("record_type") == "run"]
    assert (run.run_group, run.job_type) == ("vaegan-smoke", "eval")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["protocol"]["masks"]["center"]["kind"] == "center"
    assert (config["protocol"]["seed"], config["limit"]) == (7, 4)
    (run_dir,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    media = run_dir / "files" / "media"
    assert [p.name.split("_")[0] for p in (media / "table" / "eval").iterdir()] == ["tiny"]
    assert sorted(p.name.split("_")[0] for p in (media / "images").iterdir()) == [
        "tiny", "tiny-center"
    ]  # fmt: skip


def test_eval_run_is_grouped_with_training_and_holds_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceinpaint.eval.dashboard import log_eval, open_eval_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    trained_by = [{"project": "faceinpaint-test", "id": "train123", "name": "vaegan-smoke", "group": None}]  # fmt: skip
    row = {"protocol": "p", "mask": "center", "method": "mean", "checkpoint": None, "n": 2,
           "mask_hash": "ab", "metrics": {"psnr": {"mean": 20.0, "ci95": 1.0, "max": 22.0},
                                          "fid": {"value": 3.5, "n": 2}}}  # fmt: skip
    run = open_eval_run("p", tmp_path, trained_by, {"date": "today"})
    try:
        assert (run.job_type, run.group, run.project) == (
            "eval",
            "vaegan-smoke",
            "faceinpaint-test",
        )
        assert run.config["training_runs"] == ["train123"] and run.config["date"] == "today"
        log_eval(run, "p", [row], {})
        assert run.summary["p/center/mean/psnr"] == 20.0
        assert run.summary["p/center/mean/fid"] == 3.5
    finally:
        run.finish()


def test_an_online_eval_run_uses_the_checkpoints_model_artifact(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import wandb

    from faceinpaint.eval.dashboard import use_model_artifact

    used = []
    trained = {"entity": "lab", "project": "faceinpaint", "model_artifact": "model-abc"}
    use_model_artifact(SimpleNamespace(use_artifact=used.append), trained)
    assert used == ["lab/faceinpaint/model-abc:latest"]

    def missing(name: str) -> None:
        raise wandb.errors.CommError(f"artifact {name} not found")

    use_model_artifact(SimpleNamespace(use_artifact=missing), trained)
    assert "not linked to the model artifact lab/faceinpaint/model-abc:latest" in caplog.text


def test_vaegan_scores_are_one_number_per_checkpoint_whatever_the_path_or_batch(
    tmp_path: Path,
) -> None:
    from faceinpaint.lit.inference import load_inpainter
    from faceinpaint.lit.vaegan import VAEGANModule

    torch.manual_seed(0)
    vaegan = VAEGANModule(
        image_size=SIZE, latent_dim=8, base_channels=4, max_channels=8, num_layers=3,
        critic_base_channels=4, critic_max_channels=8, local_size=16,
        weights=LossWeights(feat=0.0, landmark=0.0), vgg_weights="random", stage_boundaries=[1, 2, 3],
    )  # fmt: skip
    with torch.no_grad():  # an untrained generator barely depends on its hole noise; make it
        for weight in vaegan.generator.parameters():
            if weight.ndim >= 2:
                weight.mul_(2)
    path = str(save_checkpoint(vaegan, tmp_path / "vaegan.ckpt"))
    spec = MaskSpec("random_square", min_side=0.25, max_side=0.5)
    data = FaceDataModule(
        root=None, synthetic_size=180, image_size=SIZE, test_mask=spec, eval_batch_size=16,
        num_workers=0, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    protocol = Protocol("one", {"square": spec}, image_sizes=(SIZE,), split="test")
    scores = {
        batch_size: evaluate(data, protocol, vaegan=path, baselines=[], batch_size=batch_size,
                             device="cpu", out=str(tmp_path / f"out{batch_size}"))[0]["metrics"]
        for batch_size in (1, 16)
    }  # fmt: skip
    model = load_inpainter(path)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    (tested,) = trainer.test(model, datamodule=data, verbose=False)
    assert scores[1]["psnr_hole"]["n"] == 18
    for metric in ("psnr_hole", "ssim_hole", "psnr"):
        assert scores[1][metric]["mean"] == pytest.approx(scores[16][metric]["mean"], rel=1e-5)
        assert scores[16][metric]["mean"] == pytest.approx(tested[f"test/{metric}"], rel=1e-5)


def test_lpips_and_fid_reach_the_rows_through_injected_networks(tmp_path: Path) -> None:
    """The plumbing of the optional metrics, with stand-ins for the pretrained networks."""
    from faceinpaint.eval.methods import baseline_method
    from faceinpaint.eval.tasks import run_task, task_datamodule
    from faceinpaint.metrics import PerceptualNetworks

    class MeanAbsoluteDistance(torch.nn.Module):
        def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
            return (first - second).abs().mean((1, 2, 3))

    class ChannelMeans(torch.nn.Module):
        num_features = 3

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return images.float().mean((2, 3))

    networks = PerceptualNetworks(lpips=MeanAbsoluteDistance(), fid=ChannelMeans())
    (task,) = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,)).tasks()
    datamodule = task_datamodule(embedded(tmp_path), task)
    methods = [baseline_method("mean"), baseline_method("harmonic")]
    device = torch.device("cpu")
    result = run_task(task, datamodule, methods, device, 4, 3, 0, None, networks)
    for method in methods:
        metrics = result.metrics[method.name]
        assert metrics["lpips"]["n"] == 4 and metrics["lpips"]["mean"] > 0
        assert metrics["fid"]["n"] == 4 and metrics["fid"]["value"] > 0
    plain = run_task(task, datamodule, methods[:1], device, 4, 3, 0, None)
    assert "lpips" not in plain.metrics["mean"] and "fid" not in plain.metrics["mean"]


def test_evaluate_names_unknown_baselines_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"unknown classical fills \['blur'\]; expected some of .*'nn'"
    ):
        evaluate(
            embedded(tmp_path), PROTOCOL, baselines=["mean", "blur"], out=str(tmp_path / "out")
        )
    assert not (tmp_path / "out").exists()


def test_a_sampled_protocol_scores_every_method_and_mask_on_the_same_sampled_faces(
    tmp_path: Path,
) -> None:
    from faceinpaint.batch import IMAGE, MASK
    from faceinpaint.eval.tasks import task_datamodule
    from faceinpaint.metrics import InpaintingMetrics
    from faceinpaint.ops.fills import mean_fill

    data = FaceDataModule(  # val: 10 faces
        root=None, synthetic_size=100, num_workers=0, cache_dir=str(tmp_path / "cache")
    )
    protocol = Protocol("tiny", PROTOCOL.masks, image_sizes=(SIZE,), sample=6, sample_seed=3)
    chosen = sample_indices(10, 6, seed=3)
    kwargs = dict(baselines=["mean", "harmonic"], batch_size=4, device="cpu", grid_samples=2)
    rows = evaluate(data, protocol, out=str(tmp_path / "out"), **kwargs)
    assert len(rows) == 4
    for row in rows:
        assert row["n"] == 6 and (row["sample"], row["sample_seed"]) == (6, 3)
        assert row["config"]["protocol"]["sample"] == 6
    for task in protocol.tasks():
        task_rows = [r for r in rows if r["mask"] == task.mask]
        # the square masks depend on the face's index: the hash names the sampled faces
        assert {r["mask_hash"] for r in task_rows} == {task_mask_hash(task, chosen)}
        datamodule = task_datamodule(data, task)
        batch = datamodule.prepare_batch(datamodule.dataset("val").__getitems__(chosen), "test")
        expected = InpaintingMetrics()
        expected.update(mean_fill(batch[IMAGE], batch[MASK]), batch[IMAGE], batch[MASK])
        (mean_row,) = [r for r in task_rows if r["method"] == "mean"]
        assert mean_row["metrics"]["psnr_hole"]["mean"] == pytest.approx(
            expected.summary()["psnr_hole"]["mean"], rel=1e-6
        )
    assert (
        "a fixed random sample of 6 faces (sample_seed 3)"
        in (tmp_path / "out" / "tiny.md").read_text()
    )

    limited = evaluate(data, protocol, limit=2, out=str(tmp_path / "limited"), **kwargs)
    for task in protocol.tasks():
        (row, _) = [r for r in limited if r["mask"] == task.mask]
        assert row["n"] == 2 and row["mask_hash"] == task_mask_hash(task, chosen[:2])
    assert (
        "the first 2 of a fixed random sample of 6 faces"
        in (tmp_path / "limited" / "tiny.md").read_text()
    )
    with pytest.raises(
        ValueError, match="sample 11 needs at least that many faces; split 'val' has 10"
    ):
        evaluate(data, Protocol("tiny", PROTOCOL.masks, image_sizes=(SIZE,), sample=11),
                 out=str(tmp_path / "refused"), **kwargs)  # fmt: skip
    assert not (tmp_path / "refused").exists()


def test_eval_scores_the_package_fills_on_the_smoke_protocol(tmp_path: Path) -> None:
    rows = cli_main(
        ["eval", "--config", str(REPO / "configs/eval/smoke.yaml"), "--limit", "2"]
        + ["--baselines", "[patchmatch, biharmonic]", "--device", "cpu"]
        + ["--data.cache_dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    )
    masks = ("center", "left", "right", "random_pixels")
    assert [(r["mask"], r["method"]) for r in rows] == [
        (mask, method) for mask in masks for method in ("patchmatch", "biharmonic")
    ]
    for row in rows:
        assert row["n"] == 2 and row["seconds_per_face"] > 0
        assert math.isfinite(row["metrics"]["psnr_hole"]["mean"])
    table = (tmp_path / "out" / "thesis.md").read_text()
    assert "patchmatch" in table and "biharmonic" in table


def test_learned_methods_get_paired_differences_against_the_best_fill(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    rows = evaluate(
        embedded(tmp_path), PROTOCOL, vaegan=str(checkpoints["vaegan"]), oracles=True,
        baselines=["mean", "harmonic"], device="cpu", out=str(out),
    )  # fmt: skip
    for mask in ("center", "square"):
        by_method = {r["method"]: r for r in rows if r["mask"] == mask}
        assert set(by_method) == {"vaegan", "vaegan-oracle", "mean", "harmonic"}
        assert "paired" not in by_method["mean"] and "paired" not in by_method["vaegan-oracle"]
        for metric in ("psnr_hole", "ssim_hole"):
            paired = by_method["vaegan"]["paired"][metric]
            fills = {
                name: by_method[name]["metrics"][metric]["mean"] for name in ("mean", "harmonic")
            }
            best = max(fills, key=fills.get)
            assert paired["against"] == best and paired["n"] == 4
            # the mean of the per-face differences is the difference of the means
            expected = by_method["vaegan"]["metrics"][metric]["mean"] - fills[best]
            assert paired["mean"] == pytest.approx(expected, abs=1e-6)
    table = (out / "tiny.md").read_text()
    assert "Paired differences, method minus the best classical fill" in table
    assert "| tiny | center | vaegan (" in table


def test_paired_differences_need_a_fill():
    from faceinpaint.eval.tasks import paired_against_fills

    values = {"a": {"psnr_hole": torch.tensor([1.0, 2.0]), "ssim_hole": torch.tensor([0.5, 0.5])}}
    assert paired_against_fills(values, []) == {}
    values["f"] = {"psnr_hole": torch.tensor([0.0, 0.0]), "ssim_hole": torch.tensor([0.25, 0.75])}
    paired = paired_against_fills(values, ["f"])
    assert set(paired) == {"a"}
    assert paired["a"]["psnr_hole"]["mean"] == pytest.approx(1.5)
    assert paired["a"]["ssim_hole"]["std"] == pytest.approx(0.3535534, abs=1e-6)


def test_a_quiet_eval_prints_no_report_but_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    protocol = Protocol("tiny", {"center": MaskSpec("center")}, image_sizes=(SIZE,))
    common = {"data": embedded(tmp_path), "protocol": protocol, "baselines": ["mean"], "limit": 2}
    evaluate(**common, out=str(tmp_path / "quiet"), quiet=True)
    assert "| center | mean |" not in capsys.readouterr().out
    assert "| center | mean |" in (tmp_path / "quiet" / "tiny.md").read_text()
    evaluate(**common, out=str(tmp_path / "loud"))
    assert "| center | mean |" in capsys.readouterr().out
