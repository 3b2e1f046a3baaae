"""DCGANModule under a Trainer: alternating updates, the search stage's files, metrics and guards."""

from __future__ import annotations

import json
from dataclasses import replace

import lightning.pytorch as pl
import pytest
import torch
from helpers import SmoothFaces, cpu_trainer, tiny_dcgan
from torch.utils.data import DataLoader

from faceinpaint.batch import IMAGE, INDEX, MASK
from faceinpaint.latent_search import SearchSettings
from faceinpaint.lit.dcgan import FORMER_SEARCH_NAMES, DCGANModule
from faceinpaint.lit.inference import load_inpainter
from faceinpaint.metrics import InpaintingMetrics

SIZE = 16


class _StepSpy(pl.Callback):
    """Records, at each optimizer step, which parameters the step changed and D's gradients."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.events:
            return
        for name, optimizer in zip(("g", "d"), trainer.optimizers, strict=True):
            original = optimizer.step

            def step(*args, _name=name, _original=original, **kwargs):
                before = {k: v.detach().clone() for k, v in module.named_parameters()}
                d_grads = [p.grad.clone() for p in module.discriminator.parameters()]
                g_grads = [p.grad for p in module.generator.parameters()]
                out = _original(*args, **kwargs)
                changed = {k for k, v in module.named_parameters() if not torch.equal(v, before[k])}
                self.events.append(
                    {"name": _name, "changed": changed, "d_grads": d_grads, "g_grads": g_grads}
                )
                return out

            optimizer.step = step


def test_d_step_changes_only_d_and_g_step_changes_only_g(tmp_path):
    spy = _StepSpy()
    cpu_trainer(tmp_path, max_steps=2, callbacks=[spy]).fit(
        tiny_dcgan(), DataLoader(SmoothFaces(8), batch_size=4)
    )
    assert [e["name"] for e in spy.events] == ["d", "g"], "one D step then one G step per batch"
    assert list((tmp_path / "images").glob("samples_*.png")), "no sample grid written"
    d_step, g_step = spy.events
    d_names = {k for k, _ in tiny_dcgan().named_parameters() if k.startswith("discriminator.")}
    g_names = {k for k, _ in tiny_dcgan().named_parameters() if k.startswith("generator.")}
    assert d_step["changed"] == d_names
    assert g_step["changed"] == g_names
    assert all(g is None for g in d_step["g_grads"]), "fakes must be detached for D"
    for at_d, at_g in zip(d_step["d_grads"], g_step["d_grads"], strict=True):
        assert torch.equal(at_d, at_g), "G's backward must not touch D's gradients (toggle)"


class _Formats(pl.Callback):
    """The memory format of D's input and of G's and D's first convolution weights."""

    def __init__(self) -> None:
        self.inputs: list[bool] = []

    def on_train_start(self, trainer, module) -> None:
        self.weights = [
            next(net.parameters()).is_contiguous(memory_format=torch.channels_last)
            for net in (module.generator, module.discriminator)
        ]
        module.discriminator.register_forward_pre_hook(
            lambda m, args: self.inputs.append(
                args[0].is_contiguous(memory_format=torch.channels_last)
            )
        )


@pytest.mark.parametrize("channels_last", [False, True])
def test_channels_last_trains_in_that_format_under_bf16(tmp_path, channels_last):
    formats = _Formats()
    model = tiny_dcgan(channels_last=channels_last)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = cpu_trainer(tmp_path, max_steps=2, callbacks=[formats], precision="bf16-mixed")
    trainer.fit(model, DataLoader(SmoothFaces(8), batch_size=4))
    assert formats.weights == [channels_last] * 2
    assert formats.inputs and set(formats.inputs) == {channels_last}
    after = list(model.parameters())
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_search_under_inference_mode_is_a_clear_error(tmp_path):
    trainer = cpu_trainer(tmp_path, inference_mode=True)
    with pytest.raises(RuntimeError, match="trainer.inference_mode: false"):
        trainer.test(tiny_dcgan(output_dir=str(tmp_path)), DataLoader(SmoothFaces(2), batch_size=2))


def test_test_writes_every_image_and_logs_metrics(tmp_path):
    model = tiny_dcgan(output_dir=str(tmp_path / "out"), baselines=["mean"])
    metrics = cpu_trainer(tmp_path, inference_mode=False).test(
        model, DataLoader(SmoothFaces(5), batch_size=2)
    )[0]
    for name in ("psnr", "ssim", "psnr_hole", "ssim_hole"):
        assert f"test/{name}" in metrics and f"test/mean/{name}" in metrics
    directory = tmp_path / "out" / "test"
    rows = [json.loads(line) for line in (directory / "results.jsonl").read_text().splitlines()]
    assert [row["index"] for row in rows] == [0, 1, 2, 3, 4]
    assert all(row["loss"] == pytest.approx(row["context"] + row["prior"]) for row in rows)
    for i in range(5):
        assert (directory / f"{i:06d}.png").is_file() and (
            directory / f"{i:06d}_mask.png"
        ).is_file()
    assert not list(directory.glob(".*tmp")), "temporary files left behind"


def test_predict_returns_the_chosen_candidates_with_all_when_asked(tmp_path):
    model = tiny_dcgan(output_dir=str(tmp_path), return_all=True)
    batches = cpu_trainer(tmp_path, inference_mode=False).predict(
        model, DataLoader(SmoothFaces(3), batch_size=3)
    )
    output = batches[0]
    assert output["inpainted"].shape == (3, 3, SIZE, SIZE)
    assert output["all_generated"].shape == (3, 2, 3, SIZE, SIZE)
    torch.testing.assert_close(output["loss"], output["candidate_loss"].min(dim=1).values)
    hole = SmoothFaces(3).mask.bool().expand(3, 3, SIZE, SIZE)
    known = ~hole
    assert torch.equal(output["inpainted"][known], SmoothFaces(3).images[known])


def test_checkpoint_with_another_latent_prior_is_refused(tmp_path):
    trained = tiny_dcgan(latent_prior="normal")
    trainer = cpu_trainer(tmp_path, max_steps=2)
    trainer.fit(trained, DataLoader(SmoothFaces(4), batch_size=4))
    path = tmp_path / "normal.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=False)["hyper_parameters"]["latent_prior"] == "normal"
    with pytest.raises(ValueError, match="latent_prior='normal'"):
        cpu_trainer(tmp_path, inference_mode=False).test(
            tiny_dcgan(latent_prior="uniform"),
            DataLoader(SmoothFaces(2), batch_size=2),
            ckpt_path=path,
        )


def test_landmark_network_term_runs_inside_test_from_a_checkpoint(tmp_path):
    from faceinpaint.landmarks.network import LandmarkNet

    checkpoint = tmp_path / "landmarks.pt"
    LandmarkNet(widths=(4, 4, 4, 4)).save(checkpoint)
    model = tiny_dcgan(
        output_dir=str(tmp_path / "out"),
        search={"landmark_weight": 1.0},
        landmark_checkpoint=str(checkpoint),
    )
    cpu_trainer(tmp_path, inference_mode=False).test(
        model, DataLoader(SmoothFaces(2), batch_size=2)
    )
    lines = (tmp_path / "out" / "test" / "results.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(
        row["loss"] == pytest.approx(row["context"] + row["prior"] + row["landmark"])
        for row in rows
    )


def test_validation_scores_the_short_random_start_search_during_fit(tmp_path):
    model = tiny_dcgan(val_candidates=3, val_iterations=4)
    faces = DataLoader(SmoothFaces(4), batch_size=4)
    trainer = cpu_trainer(tmp_path, max_epochs=2, inference_mode=False, num_sanity_val_steps=0)
    trainer.fit(model, train_dataloaders=faces, val_dataloaders=faces)
    logged = trainer.callback_metrics
    assert {"val/psnr_hole", "val/ssim_hole", "val/psnr", "val/ssim"} <= set(logged)
    # the same short search, by hand, on the trained generator: the same number
    batch = next(iter(faces))
    search = model.latent_search(validation=True)
    settings = search.settings
    assert (settings.candidates, settings.iterations, settings.poisson_iterations) == (3, 4, 0)
    inpainted = search(batch[IMAGE], batch[MASK], batch[INDEX]).inpainted
    metrics = InpaintingMetrics()
    metrics.update(inpainted, batch[IMAGE], batch[MASK])
    assert float(logged["val/psnr_hole"]) == pytest.approx(float(metrics.compute()["psnr_hole"]))
    # the configured search is left as it was
    assert model.latent_search().settings == model.search_settings
    assert (model.search_settings.candidates, model.search_settings.iterations) == (2, 2)


# ----------------------------------------------------------------------------- settings
FORMER_SEARCH = dict(
    num_candidates=3,
    iterations=4,
    search_lr=0.05,
    search_betas=[0.5, 0.99],
    prior_weight=0.01,
    context_window=5,
    landmark_weight=0.0,
    poisson_iterations=8,
    search_holdout=0.0,
    search_seed=7,
    encoder_perturbation=0.2,
)
GROUPED_SEARCH = SearchSettings(
    candidates=3,
    iterations=4,
    lr=0.05,
    betas=(0.5, 0.99),
    prior_weight=0.01,
    context_window=5,
    poisson_iterations=8,
    seed=7,
    encoder_perturbation=0.2,
)


def _flat(hparams: dict) -> dict:
    """``hparams`` as checkpoints held them before ``search``: its fields as flat arguments (the
    fields added since, such as ``precision``, had no flat name and are left out)."""
    flat = {k: v for k, v in hparams.items() if k != "search"}
    names = {field: name for name, field in FORMER_SEARCH_NAMES.items()}
    return flat | {names[k]: v for k, v in vars(hparams["search"]).items() if k in names}


def _search_batch() -> dict[str, torch.Tensor]:
    return next(iter(DataLoader(SmoothFaces(2), batch_size=2)))


def test_former_flat_hparams_read_as_the_search_group():
    current = DCGANModule.current_hparams(_flat(dict(tiny_dcgan().hparams)) | FORMER_SEARCH)
    assert current["search"] == GROUPED_SEARCH
    assert not set(FORMER_SEARCH_NAMES) & set(current)
    torch.manual_seed(0)
    former = DCGANModule(**current)
    torch.manual_seed(0)
    grouped = tiny_dcgan(search=vars(GROUPED_SEARCH))
    assert dict(former.hparams) == dict(grouped.hparams)
    batch = _search_batch()
    a = former.search(batch[IMAGE], batch[MASK], batch[INDEX])
    b = grouped.search(batch[IMAGE], batch[MASK], batch[INDEX])
    assert torch.equal(a.inpainted, b.inpainted) and torch.equal(a.candidate_loss, b.candidate_loss)


def test_the_search_group_reads_from_a_mapping_and_dotted_names():
    current = DCGANModule.current_hparams(
        {"search": {"candidates": 5, "betas": [0.5, 0.9]}, "search.iterations": 9}
    )
    assert current == {"search": SearchSettings(candidates=5, iterations=9, betas=(0.5, 0.9))}
    assert DCGANModule.current_hparams({"ngf": 4}) == {"ngf": 4}


def test_inference_overrides_take_the_search_settings_names():
    model = tiny_dcgan(search=vars(GROUPED_SEARCH))
    loaded = DCGANModule.for_inference(
        dict(model.hparams), model.state_dict(), candidates=2, holdout=0.25
    )
    assert loaded.search_settings == replace(GROUPED_SEARCH, candidates=2, holdout=0.25)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="num_candidates"):
        DCGANModule.for_inference(dict(model.hparams), model.state_dict(), num_candidates=2)


def test_a_checkpoint_with_former_flat_hparams_loads_and_resumes(tmp_path):
    """A checkpoint written before ``search`` (flat hparams, as LightningCLI saved them) loads
    for inference with the same settings and results, and training resumes from it."""
    torch.manual_seed(0)
    model = tiny_dcgan(search=vars(GROUPED_SEARCH))
    trainer = cpu_trainer(tmp_path, max_steps=2)
    trainer.fit(model, DataLoader(SmoothFaces(4), batch_size=4))
    path = tmp_path / "former.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"] = _flat(checkpoint["hyper_parameters"]) | {
        "_class_path": "faceinpaint.lit.dcgan.DCGANModule"
    }
    torch.save(checkpoint, path)

    loaded = load_inpainter(path)
    assert dict(loaded.hparams) == dict(model.hparams)
    batch = _search_batch()
    expected = model.eval().search(batch[IMAGE], batch[MASK], batch[INDEX])
    got = loaded.search(batch[IMAGE], batch[MASK], batch[INDEX])
    assert torch.equal(got.inpainted, expected.inpainted)
    assert load_inpainter(path, iterations=1).search_settings.iterations == 1

    resumed = cpu_trainer(tmp_path, max_steps=4)
    resumed.fit(
        tiny_dcgan(search=vars(GROUPED_SEARCH)),
        DataLoader(SmoothFaces(4), batch_size=4),
        ckpt_path=path,
    )
    assert resumed.global_step == 4


def test_a_stopping_rule_is_named_in_the_method_and_left_out_of_validation():
    model = tiny_dcgan(search=vars(GROUPED_SEARCH))
    for field, suffix in (("holdout", "+holdout"), ("discrepancy", "+discrepancy")):
        loaded = DCGANModule.for_inference(dict(model.hparams), model.state_dict(), **{field: 0.5})
        assert suffix in loaded.method_name()
        assert getattr(loaded.latent_search(validation=True).settings, field) == 0.0
    assert "+discrepancy" not in model.method_name() and "+holdout" not in model.method_name()
