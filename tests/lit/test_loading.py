"""Loading by kind: the shipped weights and the former class paths they carry still load."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from faceinpaint.lit.inference import checkpoint_kind, load_inpainter
from faceinpaint.lit.loading import load_weights, read_checkpoint, read_weights
from faceinpaint.lit.method import resolve_class_path
from faceinpaint.lit.registry import declared
from faceinpaint.lit.vaegan import VAEGANModule

VAEGAN_CLASS = VAEGANModule.class_path()
# Former class paths -> current ones, from each declared class's former_names.
CLASS_ALIASES = {
    f"{cls.__module__}.{former}": cls.class_path()
    for cls in declared().values()
    for former in cls.former_names
}

ASSETS = Path(__file__).resolve().parents[2] / "faceinpaint" / "assets"


@pytest.mark.parametrize("former", sorted(CLASS_ALIASES))
def test_a_former_class_path_imports_as_the_current_class(former):
    module, _, name = former.rpartition(".")
    current_module, _, current_name = CLASS_ALIASES[former].rpartition(".")
    current = getattr(importlib.import_module(current_module), current_name)
    assert getattr(importlib.import_module(module), name) is current
    assert resolve_class_path(former) == CLASS_ALIASES[former]


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="VAEGANNothing"):
        importlib.import_module("faceinpaint.lit.vaegan").VAEGANNothing  # noqa: B018


@pytest.mark.parametrize("name", ["vaegan-demo", "dcgan-demo", "encoder-demo"])
def test_the_shipped_weights_load(name):
    path = ASSETS / f"{name}.safetensors"
    class_path, _, _ = read_weights(path)
    module = load_weights(path)
    assert f"{type(module).__module__}.{type(module).__name__}" == resolve_class_path(class_path)


@pytest.mark.parametrize(("name", "kind"), [("vaegan-demo", "vaegan"), ("dcgan-demo", "dcgan")])
def test_the_shipped_inpainters_answer_the_contract(name, kind):
    path = ASSETS / f"{name}.safetensors"
    checkpoint = read_checkpoint(path)
    assert checkpoint_kind(checkpoint) == kind
    overrides = {"candidates": 2, "iterations": 2} if kind == "dcgan" else {}
    model = load_inpainter(path, checkpoint, **overrides)
    size = int(model.hparams.image_size)
    damaged = torch.zeros(2, 3, size, size)
    mask = torch.zeros(2, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1.0
    damaged[:, :, : size // 4] = 0.5
    result = model.inpaint(damaged, mask, torch.arange(2))
    assert result.shape == (2, 3, size, size)
    assert torch.equal(result * (1 - mask), damaged * (1 - mask))  # composited


def test_a_run_config_with_a_former_class_path_still_parses(tmp_path, capsys):
    from faceinpaint.cli import cli_main

    repo = Path(__file__).resolve().parents[2]
    config = tmp_path / "former.yaml"
    text = (repo / "configs/dcgan/smoke.yaml").read_text()
    config.write_text(text.replace("DCGANModule", "DCGANInpainter"))
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    assert "class_path: faceinpaint.lit.dcgan.DCGANInpainter" in capsys.readouterr().out


@pytest.mark.parametrize(
    "former", ["faceinpaint.lit.dcgan.DCGANInpainter", "faceinpaint.lit.vaegan.VAEGANInpainting"]
)
def test_weights_saved_under_a_former_class_path_still_load(former, tmp_path):
    """Weights files written before the renames carry the former class path in their metadata."""
    from faceinpaint.lit.weights import save_weights

    current = load_weights(
        ASSETS / f"{'dcgan' if 'dcgan' in former else 'vaegan'}-demo.safetensors"
    )
    _, init_args, state = read_weights(
        ASSETS / f"{'dcgan' if 'dcgan' in former else 'vaegan'}-demo.safetensors"
    )
    path = save_weights(state, former, init_args, tmp_path / "former.safetensors")
    module = load_weights(path)
    assert type(module) is type(current)
    loaded = module.state_dict()  # the stored tensors (a VAE-GAN file holds its generator only)
    assert all(torch.equal(loaded[k].float(), v.float()) for k, v in state.items())


def test_a_vaegan_checkpoint_loads_for_inference_without_a_word(tmp_path):
    """Its VGG and critics serve training alone: loading it for inference warns of no key."""
    import warnings

    import lightning.pytorch as pl
    from helpers import tiny_vaegan

    torch.manual_seed(0)
    module = tiny_vaegan(weights={"feat": 1.0})
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    path = tmp_path / "vaegan.ckpt"
    trainer.save_checkpoint(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_inpainter(path)
    for name, value in module.generator.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[name], value), name
    assert module.vgg is not None and loaded.vgg is None


def test_exported_weights_record_what_they_were_trained_on(tmp_path):
    import lightning.pytorch as pl
    from helpers import tiny_vaegan

    from faceinpaint.data.datamodule import FaceDataModule
    from faceinpaint.lit.weights import export_weights

    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(tiny_vaegan())
    trainer.save_checkpoint(tmp_path / "vaegan.ckpt")
    checkpoint = torch.load(tmp_path / "vaegan.ckpt", weights_only=False)
    data = FaceDataModule(image_size=32, synthetic_size=40, crop_size=0.7)
    checkpoint["datamodule_hyper_parameters"] = dict(data.hparams) | {"_instantiator": "cli"}
    checkpoint["hyper_parameters"]["_class_path"] = VAEGAN_CLASS  # LightningCLI records it
    torch.save(checkpoint, tmp_path / "vaegan.ckpt")
    weights = export_weights(tmp_path / "vaegan.ckpt", tmp_path / "vaegan.safetensors")
    recorded = read_checkpoint(weights)["datamodule_hyper_parameters"]
    assert (recorded["root"], recorded["synthetic_size"], recorded["crop_size"]) == (None, 40, 0.7)
    assert not any(key.startswith("_") for key in recorded)


@pytest.mark.parametrize("name", ["vaegan-demo", "dcgan-demo", "encoder-demo"])
def test_the_shipped_weights_record_their_procedural_training_faces(name):
    data = read_checkpoint(ASSETS / f"{name}.safetensors")["datamodule_hyper_parameters"]
    assert data["root"] is None and data["synthetic_size"] == 20000


def test_the_shipped_flat_init_args_read_as_settings_groups():
    """The shipped files hold flat init_args (written before the groups): they build the
    modules with their settings in the groups."""
    from faceinpaint.latent_search import SearchSettings
    from faceinpaint.losses.vaegan import CriticSettings, LossWeights

    dcgan = load_weights(ASSETS / "dcgan-demo.safetensors")
    assert dcgan.search_settings == SearchSettings(candidates=4, iterations=50, lr=0.03)
    vaegan = load_weights(ASSETS / "vaegan-demo.safetensors")
    assert vaegan.weights == LossWeights(kl=1e-6, feat=0.0, landmark=0.0, l1=1.0)
    assert vaegan.critic == CriticSettings()


@pytest.mark.parametrize("kind", ["dcgan", "vaegan"])
def test_exported_weights_hold_the_groups_as_json_and_load_back(kind, tmp_path):
    import json

    import lightning.pytorch as pl
    from helpers import tiny_dcgan, tiny_vaegan
    from safetensors import safe_open

    from faceinpaint.lit.dcgan import DCGANModule
    from faceinpaint.lit.weights import export_weights
    from faceinpaint.losses.vaegan import LossWeights

    if kind == "dcgan":
        module, class_path = (
            tiny_dcgan(search={"candidates": 3, "betas": (0.5, 0.9)}),
            DCGANModule.class_path(),
        )
    else:
        module, class_path = tiny_vaegan(weights={"kl": 0.5}, critic={"n_critic": 2}), VAEGAN_CLASS
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    checkpoint = torch.load(tmp_path / "run.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["_class_path"] = class_path
    torch.save(checkpoint, tmp_path / "run.ckpt")
    path = export_weights(tmp_path / "run.ckpt", tmp_path / "run.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        init_args = json.loads(handle.metadata()["init_args"])
    loaded = load_inpainter(path)
    if kind == "dcgan":
        assert init_args["search"]["candidates"] == 3
        assert loaded.search_settings == module.search_settings
    else:
        assert init_args["weights"] == {
            "kl": 0.5, "feat": 0.0, "local_adv": 0.01, "global_adv": 0.01, "landmark": 0.0, "l1": 0.0
        }  # fmt: skip
        assert loaded.critic == module.critic
        assert loaded.weights == LossWeights(kl=0.5, feat=0.0, landmark=0.0)
