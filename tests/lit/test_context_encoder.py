"""ContextEncoderModule: its declaration, the update pattern, an overfit, the inference contract,
shipped weights, and a fit of the smoke config through the CLI."""

from __future__ import annotations

import inspect
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from helpers import SmoothFaces, cpu_trainer
from torch.utils.data import DataLoader

from faceinpaint.batch import IMAGE, INDEX, MASK
from faceinpaint.lit.context_encoder import ContextEncoderModule
from faceinpaint.lit.method import registered_methods

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny CPU networks: one thread

REPO = Path(__file__).resolve().parents[2]
SIZE = 16


def tiny_ce(**overrides) -> ContextEncoderModule:
    """A 16 px Context Encoder with 4-8 channel widths and an 8-d code."""
    options = dict(
        image_size=SIZE,
        base_channels=4,
        max_channels=8,
        bottleneck=8,
        discriminator_channels=4,
        image_log_every_n_steps=0,
    )
    return ContextEncoderModule(**(options | overrides))


def test_the_class_declares_the_method() -> None:
    assert registered_methods()["ce"] is ContextEncoderModule
    assert ContextEncoderModule.display_name == "Context Encoder"
    arguments = set(inspect.signature(ContextEncoderModule.__init__).parameters)
    declared = ContextEncoderModule.architecture + ContextEncoderModule.optimizer_settings
    assert set(declared) <= arguments
    assert ContextEncoderModule.export_prefixes == ("generator.",)
    defaults = tiny_ce().hparams
    assert (defaults.lr, tuple(defaults.betas)) == (2e-4, (0.5, 0.999))  # the paper's
    assert (defaults.rec_weight, defaults.adv_weight) == (0.999, 0.001)


class _StepSpy(pl.Callback):
    """Records, at each optimizer step, which parameters the step changed."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.events:
            return
        for name, optimizer in zip(("g", "d"), trainer.optimizers, strict=True):
            original = optimizer.step

            def step(*args, _name=name, _original=original, **kwargs):
                before = {k: v.detach().clone() for k, v in module.named_parameters()}
                g_grads = [p.grad for p in module.generator.parameters()]
                out = _original(*args, **kwargs)
                changed = {k for k, v in module.named_parameters() if not torch.equal(v, before[k])}
                self.events.append({"name": _name, "changed": changed, "g_grads": g_grads})
                return out

            optimizer.step = step


def _names(module: ContextEncoderModule, prefix: str) -> set[str]:
    return {k for k, _ in module.named_parameters() if k.startswith(prefix)}


def test_d_step_changes_only_d_and_g_step_changes_only_g(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, spy = tiny_ce(), _StepSpy()
    cpu_trainer(tmp_path, max_steps=2, callbacks=[spy]).fit(
        model, DataLoader(SmoothFaces(8), batch_size=4)
    )
    assert [e["name"] for e in spy.events] == ["d", "g"], "one D step then one G step per batch"
    d_step, g_step = spy.events
    assert d_step["changed"] == _names(model, "discriminator.")
    assert g_step["changed"] == _names(model, "generator.")
    assert all(g is None for g in d_step["g_grads"]), "fakes must be detached for D"


def test_without_the_adversarial_term_d_never_steps(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, spy = tiny_ce(adv_weight=0.0), _StepSpy()
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    cpu_trainer(tmp_path, max_steps=2, callbacks=[spy]).fit(
        model, DataLoader(SmoothFaces(8), batch_size=4)
    )
    assert [e["name"] for e in spy.events] == ["g", "g"]
    after = list(model.discriminator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


class _Losses(pl.Callback):
    def __init__(self) -> None:
        self.rec: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.rec.append(float(trainer.callback_metrics["train/rec"]))


def test_hole_loss_goes_down_on_a_tiny_overfit(tmp_path: Path) -> None:
    torch.manual_seed(0)
    losses = _Losses()
    model = tiny_ce(lr=2e-3)
    cpu_trainer(tmp_path, max_epochs=30, callbacks=[losses], log_every_n_steps=1).fit(
        model, DataLoader(SmoothFaces(4), batch_size=4)
    )
    first, last = sum(losses.rec[:5]) / 5, sum(losses.rec[-5:]) / 5
    assert last < 0.5 * first, f"hole L2 {first:.4f} -> {last:.4f}"


def _batch(n: int = 4) -> dict[str, torch.Tensor]:
    items = [SmoothFaces(n)[i] for i in range(n)]
    return {key: torch.stack([item[key] for item in items]) for key in (IMAGE, MASK, INDEX)}


def test_inpaint_keeps_known_pixels_and_is_deterministic() -> None:
    torch.manual_seed(0)
    model = tiny_ce().eval()
    batch = _batch()
    image, mask, index = batch[IMAGE], batch[MASK], batch[INDEX]
    raw, result = model.inpaint_parts(image, mask, index)
    assert raw.shape == result.shape == image.shape
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(result[known], image[known])
    assert torch.equal(result[~known], raw[~known])
    assert torch.equal(model.inpaint(image, mask, index), result)
    garbage = torch.where(mask.bool(), torch.rand_like(image) * 2 - 1, image)
    assert torch.equal(model.inpaint(garbage, mask, index), result), "the hole was read"
    alone = model.inpaint(image[2:3], mask[2:3], index[2:3])
    torch.testing.assert_close(alone, result[2:3])  # a face's result ignores its neighbours
    oracle = model.reconstruct(image, index)
    assert oracle.shape == image.shape and float(oracle.abs().max()) <= 1.0


def test_for_inference_and_shipped_weights_rebuild_the_same_inpainter(tmp_path: Path) -> None:
    from faceinpaint.lit.loading import load_weights
    from faceinpaint.lit.weights import save_weights

    torch.manual_seed(0)
    model = tiny_ce().eval()
    batch = _batch()
    expected = model.inpaint(batch[IMAGE], batch[MASK], batch[INDEX])
    state = model.state_dict()
    rebuilt = ContextEncoderModule.for_inference(dict(model.hparams), state)
    assert torch.equal(rebuilt.inpaint(batch[IMAGE], batch[MASK], batch[INDEX]), expected)

    generator = {k: v for k, v in state.items() if k.startswith("generator.")}
    path = save_weights(generator, ContextEncoderModule.class_path(), dict(model.hparams),
                        tmp_path / "ce.safetensors", data={"image_size": SIZE})  # fmt: skip
    shipped = load_weights(path)
    assert isinstance(shipped, ContextEncoderModule) and not shipped.training
    fp16 = shipped.inpaint(batch[IMAGE], batch[MASK], batch[INDEX])
    torch.testing.assert_close(fp16, expected, atol=2e-2, rtol=0)


def test_fit_logs_every_loss_part_and_validation_metrics(tmp_path: Path) -> None:
    from faceinpaint.metrics import METRIC_NAMES

    torch.manual_seed(0)
    trainer = cpu_trainer(tmp_path, max_steps=4, log_every_n_steps=1, limit_val_batches=1)
    faces = DataLoader(SmoothFaces(8), batch_size=4)
    trainer.fit(tiny_ce(), faces, faces)
    logged = set(trainer.logged_metrics)
    parts = {"train/rec", "train/adv", "train/g_loss", "train/d_loss", "train/d_real"}
    assert parts <= logged
    assert {f"val/{name}" for name in METRIC_NAMES} <= logged  # psnr_raw included


@pytest.mark.slow
def test_smoke_config_fits_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceinpaint.cli import cli_main

    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(REPO / "configs/ce/smoke.yaml"),
              "--trainer.enable_progress_bar=false"])  # fmt: skip
    checkpoint = torch.load(tmp_path / "runs/ce-smoke/last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 16  # 2 epochs x 4 batches x (D + G)
    assert checkpoint["hyper_parameters"]["_class_path"] == ContextEncoderModule.class_path()
    images = sorted(p.name for p in tmp_path.glob("runs/ce-smoke/version_0/images/*.png"))
    assert "val_images_000008.png" in images and "train_images_000002.png" in images


def test_the_shipped_demo_weights_load_as_a_64_px_context_encoder() -> None:
    from faceinpaint.lit.loading import load_weights, read_weights_checkpoint
    from faceinpaint.paths import ASSETS

    path = ASSETS / "ce-demo.safetensors"
    model = load_weights(path)
    assert isinstance(model, ContextEncoderModule) and not model.training
    assert model.hparams.image_size == 64
    data = read_weights_checkpoint(path)["datamodule_hyper_parameters"]
    assert (data["root"], data["synthetic_size"], data["image_size"]) == (None, 20000, 64)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    result = model.inpaint(image, mask, torch.arange(2))
    assert torch.equal(result * (1 - mask), image * (1 - mask))
