"""The classical fills' test metrics: a callback any module can list, equal to the fills scored
by hand on the same images and masks."""

from __future__ import annotations

import pytest
from helpers import SmoothFaces, cpu_trainer, tiny_vaegan
from torch.utils.data import DataLoader

from faceinpaint.batch import IMAGE, MASK
from faceinpaint.lit.fill_metrics import ClassicalFillMetrics
from faceinpaint.metrics import InpaintingMetrics
from faceinpaint.ops.fills import BASELINES


def test_a_vaegan_test_run_logs_the_classical_fills_it_is_given(tmp_path):
    faces = SmoothFaces(5, size=32, hole=(8, 24))
    trainer = cpu_trainer(tmp_path, callbacks=[ClassicalFillMetrics(["mean", "harmonic"])])
    logged = trainer.test(tiny_vaegan(), DataLoader(faces, batch_size=2))[0]
    for fill in ("mean", "harmonic"):
        expected = InpaintingMetrics()
        for i in range(len(faces)):
            sample = faces[i]
            image, mask = sample[IMAGE][None], sample[MASK][None]
            expected.update(BASELINES[fill](image * (1 - mask), mask), image, mask)
        for name, value in expected.compute().items():
            assert logged[f"test/{fill}/{name}"] == pytest.approx(float(value), abs=1e-5)
    assert "test/psnr_hole" in logged  # the module's own metrics are still there


def test_an_unknown_fill_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"unknown classical fills \['blur'\]"):
        ClassicalFillMetrics(["mean", "blur"])


def test_the_dcgan_adds_one_for_its_baselines(tmp_path):
    from helpers import tiny_dcgan

    model = tiny_dcgan(output_dir=str(tmp_path), baselines=["mean"])
    kinds = [type(callback) for callback in model.configure_callbacks()]
    assert ClassicalFillMetrics in kinds
    assert ClassicalFillMetrics not in [
        type(c) for c in tiny_dcgan(output_dir=str(tmp_path)).configure_callbacks()
    ]
