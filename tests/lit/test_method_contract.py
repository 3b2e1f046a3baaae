"""The contract every registered inpainting method answers (torchmetrics' ``MetricTester`` is the
model): a method inherits these tests by registering (``faceinpaint.lit.registry``) and shipping
a smoke config, ``configs/<kind>/smoke.yaml``, from whose ``model:`` section it is built.

Checked on the CPU with the untrained smoke-size networks: output shape and range, known pixels
untouched, hole pixels never read, determinism by ``index``, one face alone equal to the same
face in a batch, what the class declares (settings that exist, a kind that loaders resolve), and
that its exported weights rebuild the same inpainter.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from faceinpaint.lit.inference import checkpoint_kind, load_inpainter
from faceinpaint.lit.loading import read_checkpoint
from faceinpaint.lit.method import InpaintingModule, import_class
from faceinpaint.lit.registry import methods
from faceinpaint.lit.weights import export_weights

REPO = Path(__file__).resolve().parents[2]
KINDS = sorted(methods())
BATCH = 3


def build(kind: str) -> InpaintingModule:
    """The method of ``configs/<kind>/smoke.yaml``, built as LightningCLI builds it."""
    config = REPO / "configs" / kind / "smoke.yaml"
    assert config.is_file(), f"registered method {kind!r} has no smoke config {config}"
    section = yaml.safe_load(config.read_text())["model"]
    cls = import_class(section["class_path"])
    assert cls is methods()[kind], f"{config} builds {cls}, not the {kind!r} method"
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model", type=cls)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    model = instantiate(parser.parse_object({"model": section})).model
    torch.manual_seed(0)
    for parameter in model.parameters():  # larger weights: outputs that depend on the input
        parameter.data.mul_(3.0)
    return model.eval()


@pytest.fixture(scope="module", params=KINDS)
def method(request: pytest.FixtureRequest) -> InpaintingModule:
    return build(request.param)


def faces(model: InpaintingModule) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(damaged, mask, index): smooth random faces with a centre hole, zeroed."""
    size = int(model.hparams.image_size)
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(BATCH, 3, 8, 8, generator=generator) * 2 - 1
    image = torch.nn.functional.interpolate(image, size=size, mode="bilinear")
    mask = torch.zeros(BATCH, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
    mask[1, :, :, : size // 2] = 1.0  # another hole shape in the batch
    return image * (1 - mask), mask, torch.tensor([5, 17, 2])


def run(model: InpaintingModule, damaged, mask, index) -> torch.Tensor:
    with torch.no_grad():
        return model.inpaint(damaged, mask, index).detach()


def test_the_class_declares_settings_it_takes(method: InpaintingModule) -> None:
    cls = type(method)
    assert cls.kind and cls.display_name
    parameters = set(inspect.signature(cls).parameters)
    for group in ("architecture", "optimizer_settings"):
        declared = set(getattr(cls, group))
        assert declared <= parameters, f"{cls.__name__}.{group}: {declared - parameters}"
    assert set(cls.oracle_settings) <= set(cls.inference_settings)
    groups = {name.split(".", 1)[0] for name in cls.export_overrides}
    assert groups <= parameters, f"{cls.__name__}.export_overrides: {groups - parameters}"
    assert cls.export_prefixes, f"{cls.__name__} exports nothing to ship"


def test_unknown_inference_settings_are_refused(method: InpaintingModule) -> None:
    cls = type(method)
    hparams = {k: v for k, v in method.hparams.items() if not str(k).startswith("_")}
    with pytest.raises(ValueError, match="at inference"):
        cls.for_inference(hparams, method.state_dict(), no_such_setting=1)


def test_output_shape_range_and_known_pixels(method: InpaintingModule) -> None:
    damaged, mask, index = faces(method)
    result = run(method, damaged, mask, index)
    assert result.shape == damaged.shape and result.dtype == damaged.dtype
    assert torch.isfinite(result).all()
    assert result.min() >= -1.0 and result.max() <= 1.0
    known = ~mask.bool().expand_as(damaged)
    assert torch.equal(result[known], damaged[known])  # known pixels untouched
    raw, parts_result = method.inpaint_parts(damaged, mask, index)
    assert raw.shape == damaged.shape
    assert torch.allclose(parts_result.detach(), result, atol=1e-6)


def test_hole_pixels_are_never_read(method: InpaintingModule) -> None:
    damaged, mask, index = faces(method)
    noisy = damaged + mask * torch.rand_like(damaged)  # something in the hole
    assert torch.allclose(run(method, noisy, mask, index), run(method, damaged, mask, index))


def test_deterministic_by_index_and_alone_equals_in_a_batch(method: InpaintingModule) -> None:
    damaged, mask, index = faces(method)
    batch = run(method, damaged, mask, index)
    assert torch.equal(run(method, damaged, mask, index), batch)
    for i in range(BATCH):
        alone = run(method, damaged[i : i + 1], mask[i : i + 1], index[i : i + 1])
        assert torch.allclose(alone[0], batch[i], atol=1e-5), f"face {i} alone differs"


def test_exported_weights_rebuild_the_same_inpainter(
    method: InpaintingModule, tmp_path: Path
) -> None:
    """The checkpoint and its fp16 weights file load as the same method, giving its results."""
    with torch.no_grad():  # fp16-representable weights: the weights file holds them exactly
        for value in method.state_dict().values():
            if value.is_floating_point():
                value.copy_(value.half().float())
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(method)
    path = tmp_path / "method.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["hyper_parameters"]["_class_path"] = type(method).class_path()  # as the CLI does
    torch.save(checkpoint, path)
    assert checkpoint_kind(read_checkpoint(path)) == type(method).kind
    weights = export_weights(path, tmp_path / "method.safetensors")
    damaged, mask, index = faces(method)
    expected = run(method, damaged, mask, index)
    for source in (path, weights):
        loaded = load_inpainter(source)
        assert type(loaded) is type(method)
        assert torch.allclose(run(loaded, damaged, mask, index), expected, atol=1e-5), source
