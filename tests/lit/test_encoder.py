"""The encoder-initialised latent search: E's shapes, E learns G's latents on a tiny overfit,
a search started from E equals the search given E's starts, the training config loads, and
the shipped-weights format round-trips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from faceinpaint.batch import IMAGE, INDEX, MASK
from faceinpaint.data.masks import make_masks
from faceinpaint.latent_search import LatentSearch, SearchSettings, encoder_starts
from faceinpaint.lit.dcgan import DCGANModule
from faceinpaint.lit.encoder import LatentEncoderModule
from faceinpaint.lit.loading import load_latent_encoder, load_weights
from faceinpaint.lit.weights import export_weights
from faceinpaint.models.latent_encoder import LatentEncoder

REPO = Path(__file__).resolve().parents[2]
SIZE = 16
LATENT = 8


@pytest.fixture(scope="module")
def dcgan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DCGAN with non-trivial BatchNorm statistics, saved as Lightning would."""
    torch.manual_seed(0)
    model = DCGANModule(latent_dim=LATENT, ngf=4, ndf=4, image_size=SIZE, num_samples=4)
    with torch.no_grad():  # weights large enough that G(z) depends visibly on z
        for layer in model.generator.modules():
            if isinstance(layer, torch.nn.ConvTranspose2d):
                layer.weight.normal_(0.0, 0.3)
        model.generator(torch.rand(64, LATENT) * 2 - 1)
    path = tmp_path_factory.mktemp("dcgan") / "dcgan.ckpt"
    hparams = dict(model.hparams) | {"_class_path": "faceinpaint.lit.dcgan.DCGANModule"}
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": hparams,
            "pytorch-lightning_version": "2.6.0",
        },
        path,
    )
    return path


def _batch(n: int = 8) -> dict[str, torch.Tensor]:
    index = torch.arange(n)
    mask = make_masks({"kind": "mixture", "components": ["center", "left", "right"]}, index, SIZE)
    image = torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * 2 - 1
    return {IMAGE: image, MASK: mask, INDEX: index}


def test_encoder_shapes_and_bounds():
    encoder = LatentEncoder(latent_dim=LATENT, image_size=SIZE, base_channels=4, max_channels=8)
    batch = _batch(5)
    z = encoder(batch[IMAGE], batch[MASK])
    assert z.shape == (5, LATENT) and z.abs().max() < 1.0
    unbounded = LatentEncoder(LATENT, SIZE, 4, 8, bounded=False)
    assert unbounded(batch[IMAGE], batch[MASK]).shape == (5, LATENT)
    with pytest.raises(ValueError, match=r"mask must be \(B,1,H,W\)"):
        encoder(batch[IMAGE], batch[MASK][:, :, :8])


def test_encoder_never_reads_the_hole():
    encoder = LatentEncoder(LATENT, SIZE, 4, 8).eval()
    batch = _batch(4)
    changed = torch.where(batch[MASK].bool(), torch.randn_like(batch[IMAGE]), batch[IMAGE])
    assert torch.equal(encoder(batch[IMAGE], batch[MASK]), encoder(changed, batch[MASK]))


def test_encoder_learns_the_latents_of_generator_samples(dcgan_checkpoint, one_cpu_thread):
    torch.manual_seed(0)
    module = LatentEncoderModule(
        str(dcgan_checkpoint),
        base_channels=8,
        max_channels=16,
        lr=3e-3,
        sample_image_weight=0.0,
        real_context_weight=0.0,
        real_hole_weight=0.0,
    )
    optimizer = module.configure_optimizers()
    module.train()
    assert not module.generator.training, "G must stay in eval mode"
    generator_before = [p.clone() for p in module.generator.parameters()]
    fixed = torch.Generator().manual_seed(7)
    latent = torch.rand(16, LATENT, generator=fixed) * 2 - 1
    with torch.no_grad():
        sample = module.generator(latent)
    mask = make_masks("center", torch.arange(16), SIZE)

    def error() -> float:
        module.encoder.eval()
        with torch.no_grad():
            value = (module.encoder(sample, mask) - latent).pow(2).mean().item()
        module.encoder.train()
        return value

    before = error()
    for _ in range(150):
        total, parts = module.losses({IMAGE: sample, MASK: mask, INDEX: torch.arange(16)}, latent)
        assert set(parts) == {"latent"}
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert error() < 0.5 * before
    assert all(
        torch.equal(a, b)
        for a, b in zip(generator_before, module.generator.parameters(), strict=True)
    )


def test_every_loss_part_is_reported(dcgan_checkpoint):
    module = LatentEncoderModule(str(dcgan_checkpoint), base_channels=4, max_channels=8)
    total, parts = module.losses(_batch(4))
    assert set(parts) == {"latent", "sample_image", "real_context", "real_hole"}
    assert torch.isclose(total, sum(parts.values()))


def test_search_from_the_encoder_equals_the_search_given_its_starts(dcgan_checkpoint, tmp_path):
    torch.manual_seed(1)
    encoder = LatentEncoder(LATENT, SIZE, 4, 8).eval()
    encoder_path = tmp_path / "encoder.ckpt"
    torch.save(
        {
            "state_dict": {f"encoder.{k}": v for k, v in encoder.state_dict().items()},
            "encoder_config": {
                "latent_dim": LATENT,
                "image_size": SIZE,
                "base_channels": 4,
                "max_channels": 8,
                "bounded": True,
            },
        },
        encoder_path,
    )
    model = DCGANModule.load_from_checkpoint(
        dcgan_checkpoint,
        map_location="cpu",
        encoder_checkpoint=str(encoder_path),
        search=SearchSettings(candidates=3, iterations=5, lr=0.05, encoder_perturbation=0.2),
    ).eval()
    batch = _batch(4)
    damaged = batch[IMAGE] * (1 - batch[MASK])
    starts = encoder_starts(encoder, damaged, batch[MASK], batch[INDEX], 3, 0.2)
    assert starts.shape == (4, 3, LATENT)
    assert torch.allclose(starts[:, 0], encoder(damaged, batch[MASK]).clamp(-1, 1))
    assert not torch.allclose(starts[:, 1], starts[:, 0])
    search = LatentSearch(
        model.generator,
        model.discriminator,
        settings=SearchSettings(candidates=3, iterations=5, lr=0.05),
        return_all=True,
    )
    given = search(batch[IMAGE], batch[MASK], batch[INDEX], starts)
    from_encoder = model.search(batch[IMAGE], batch[MASK], batch[INDEX])
    assert torch.allclose(from_encoder.latent, given.latent)
    assert torch.allclose(from_encoder.inpainted, given.inpainted)
    random_starts = search(batch[IMAGE], batch[MASK], batch[INDEX])
    assert not torch.allclose(random_starts.latent, given.latent)
    zero_steps = LatentSearch(
        model.generator,
        model.discriminator,
        settings=SearchSettings(candidates=3, iterations=0),
        return_all=True,
    )
    assert torch.allclose(
        zero_steps(batch[IMAGE], batch[MASK], batch[INDEX], starts).all_latent, starts
    )
    with pytest.raises(ValueError, match="start must be"):
        search(batch[IMAGE], batch[MASK], batch[INDEX], starts[:, :2])


def test_weights_round_trip_through_safetensors(dcgan_checkpoint, tmp_path):
    path = export_weights(dcgan_checkpoint, tmp_path / "dcgan.safetensors")
    loaded = load_weights(path)
    original = DCGANModule.load_from_checkpoint(dcgan_checkpoint, map_location="cpu").eval()
    z = torch.rand(4, LATENT) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.generator(z), original.generator(z), atol=2e-3)
    assert path.read_bytes()[:8] != b"PK\x03\x04"  # not a zip/pickle torch file
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the mode open() would give


def test_encoder_config_loads_and_builds(dcgan_checkpoint):
    config = yaml.safe_load((REPO / "configs/encoder/demo.yaml").read_text())
    assert config["model"]["class_path"] == "faceinpaint.lit.encoder.LatentEncoderModule"
    args = config["model"]["init_args"] | {"dcgan_checkpoint": str(dcgan_checkpoint)}
    module = LatentEncoderModule(**args)
    assert module.encoder_config["latent_dim"] == LATENT


def test_encoder_module_checkpoint_loads_as_encoder(dcgan_checkpoint, tmp_path):
    module = LatentEncoderModule(str(dcgan_checkpoint), base_channels=4, max_channels=8)
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    path = tmp_path / "encoder.ckpt"
    torch.save(checkpoint, path)
    encoder = load_latent_encoder(path)
    batch = _batch(2)
    module.eval()
    assert torch.equal(
        encoder(batch[IMAGE], batch[MASK]), module.encoder(batch[IMAGE], batch[MASK])
    )


def test_eval_method_searches_its_first_batch_from_the_encoder_too(dcgan_checkpoint, tmp_path):
    """The first batch of a task also records the loss curves; its result must not depend on
    that (it once searched from random starts there)."""
    from faceinpaint.eval.methods import CheckpointSpec, checkpoint_method

    torch.manual_seed(1)
    encoder = LatentEncoder(LATENT, SIZE, 4, 8).eval()
    encoder_path = tmp_path / "encoder.ckpt"
    config = {"latent_dim": LATENT, "image_size": SIZE, "base_channels": 4, "max_channels": 8}
    torch.save(
        {
            "state_dict": {f"encoder.{k}": v for k, v in encoder.state_dict().items()},
            "encoder_config": config | {"bounded": True},
        },
        encoder_path,
    )
    overrides = {"candidates": 2, "iterations": 3, "encoder_checkpoint": str(encoder_path)}
    method = checkpoint_method(
        CheckpointSpec(str(dcgan_checkpoint), overrides), torch.device("cpu")
    )
    assert method.name == "dcgan+encoder"
    batch = _batch(4)
    damaged = batch[IMAGE] * (1 - batch[MASK])
    first = method.fill(damaged, batch[MASK], batch[INDEX])  # records the history
    assert method.history
    later = method.fill(damaged, batch[MASK], batch[INDEX])
    assert torch.allclose(first, later)
