"""The time-to-quality rows (issue 13, item 2): the random start's final quality is the target,
and the encoder start's time is that of its first snapshot at or above it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from faceinpaint.batch import to_unit
from faceinpaint.bench.quality import (
    Curve,
    bench_time_to_quality,
    search_curve,
    snapshot_iterations,
)
from faceinpaint.bench.sizes import quick_sizes
from faceinpaint.latent_search import LatentSearch, initial_latents
from faceinpaint.lit.inference import load_inpainter
from faceinpaint.metrics import hole_psnr_per_sample
from faceinpaint.paths import ASSETS


def test_snapshots_are_one_two_five_steps_ending_at_the_budget():
    assert snapshot_iterations(0) == [0]
    assert snapshot_iterations(8) == [0, 1, 2, 5, 8]
    assert snapshot_iterations(200) == [0, 1, 2, 5, 10, 20, 50, 100, 200]
    assert snapshot_iterations(1000) == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]


def test_first_reaching_is_the_first_snapshot_at_or_above_the_target():
    curve = Curve([0, 1, 2], [10.0, 12.0, 11.0], [0.0, 1.0, 2.0])
    assert curve.first_reaching(12.0) == 1
    assert curve.first_reaching(9.0) == 0
    assert curve.first_reaching(12.5) is None


def test_the_curve_scores_what_the_search_itself_returns():
    # the curve's last point is the hole PSNR of the search's own result after as many steps
    model = load_inpainter(
        str(ASSETS / "dcgan-demo.safetensors"), poisson_iterations=0, landmark_weight=0.0
    )
    size = model.hparams.image_size
    image = torch.rand(2, 3, size, size) * 2 - 1
    mask = torch.zeros(2, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    index = torch.tensor([3, 7])
    search: LatentSearch = model.latent_search()
    search.settings = replace(search.settings, candidates=3, iterations=5)
    result = search(image, mask, index)
    expected = float(hole_psnr_per_sample(to_unit(result.inpainted), to_unit(image), mask).mean())
    start = initial_latents(
        index, 3, model.generator.latent_dim, search.latent_prior, search.settings.seed
    )
    curve = search_curve(model.latent_search(), start, image, mask, 5, 0.0)
    assert curve.iterations == [0, 1, 2, 5]
    assert curve.psnr_hole[-1] == pytest.approx(expected, abs=1e-4)
    assert curve.seconds == sorted(curve.seconds) and curve.seconds[0] < 0.1  # no step yet


def test_quick_rows_on_the_shipped_weights():
    rows = list(bench_time_to_quality(torch.device("cpu"), quick_sizes()))
    random, encoder, ratio = rows
    assert random.variant == "random start 4 x 8" and encoder.variant == "encoder start 2 x 4"
    target = random.extra["target_psnr_hole"]
    assert target == random.extra["curve"]["psnr_hole"][-1]
    curve = encoder.extra["curve"]
    reached = [
        i for i, v in zip(curve["iterations"], curve["psnr_hole"], strict=True) if v >= target
    ]
    assert encoder.extra["reached_at_iteration"] == (reached[0] if reached else None)
    if reached:
        assert encoder.value == curve["seconds"][curve["iterations"].index(reached[0])] / 2
        assert ratio.value == pytest.approx(random.value / encoder.value)
    else:
        assert encoder.value is None and ratio.value is None


def test_a_protocol_at_another_size_than_the_generator_is_refused(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text(
        "protocol: {name: t, image_sizes: [32], split: val, masks: {center: {kind: center}}}\n"
        "data: {root: null, synthetic_size: 40, num_workers: 0}\n"
    )
    with pytest.raises(ValueError, match="the protocol's faces are 32 px, the DCGAN's 64 px"):
        list(bench_time_to_quality(torch.device("cpu"), quick_sizes(), config=config))
