import math

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from faceinpaint.batch import to_unit
from faceinpaint.metrics import (
    InpaintingMetrics,
    gaussian_kernel_size,
    hole_boxes,
    hole_ssim_per_sample,
    ssim_per_sample,
    ssim_valid_and_padded,
)


def _random_pair(
    batch: int = 3, size: int = 32, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, noisy result) in [-1, 1], smooth enough for SSIM to be far from 0 and 1."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size // 4, size // 4, generator=generator) * 2 - 1
    image = torch.nn.functional.interpolate(image, size=size, mode="bilinear", align_corners=False)
    noise = 0.3 * torch.randn(batch, 3, size, size, generator=generator)
    return image, (image + noise).clamp(-1, 1)


def _box_mask(batch: int, size: int, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[..., top:bottom, left:right] = 1.0
    return mask


def test_psnr_whole_and_hole_match_hand_computation():
    # 16x16 grey image; a 4x4 hole off by 0.2 in [-1,1], i.e. 0.1 in [0,1], in all 3 channels.
    image = torch.zeros(1, 3, 16, 16)
    mask = _box_mask(1, 16, 6, 10, 6, 10)
    result = image + 0.2 * mask
    metric = InpaintingMetrics()
    metric.update(result, image, mask)
    values = metric.compute()
    hole_mse = 0.1**2
    whole_mse = hole_mse * 16 / 256
    assert values["psnr_hole"].item() == pytest.approx(10 * math.log10(1 / hole_mse), abs=1e-4)
    assert values["psnr"].item() == pytest.approx(10 * math.log10(1 / whole_mse), abs=1e-4)
    assert values["psnr"] > values["psnr_hole"]


def test_identical_images_give_100_db_and_ssim_one():
    image, _ = _random_pair()
    mask = _box_mask(3, 32, 8, 24, 8, 24)
    metric = InpaintingMetrics()
    metric.update(image, image, mask)
    values = metric.compute()
    for name in ("psnr", "psnr_hole"):
        assert values[name].item() == pytest.approx(100.0), f"{name} = {values[name]}"
    for name in ("ssim", "ssim_hole"):
        assert values[name].item() == pytest.approx(1.0, abs=1e-6), f"{name} = {values[name]}"


def test_ssim_equals_torchmetrics_map_over_valid_window_positions():
    image, result = _random_pair()
    preds, target = to_unit(result), to_unit(image)
    _, ssim_map = structural_similarity_index_measure(
        preds, target, data_range=1.0, reduction="none", return_full_image=True
    )
    expected = ssim_map[..., 5:-5, 5:-5].flatten(1).mean(1)
    ours = ssim_per_sample(preds, target)
    assert 0.1 < ours.min() and ours.max() < 0.95, f"test images too easy or too hard: {ours}"
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_ssim_window_is_11_px_for_sigma_1_5():
    # scikit-image's gaussian_weights=True truncates at 3.5 sigma too: 11 taps for sigma 1.5
    assert gaussian_kernel_size(1.5) == 11


def test_torchmetrics_default_column_is_torchmetrics_default_ssim():
    image, result = _random_pair()
    preds, target = to_unit(result), to_unit(image)
    expected = structural_similarity_index_measure(preds, target, data_range=1.0, reduction="none")
    torch.testing.assert_close(ssim_valid_and_padded(preds, target)[1], expected)
    metric = InpaintingMetrics()
    metric.update(result, image, _box_mask(3, 32, 8, 24, 8, 24))
    torch.testing.assert_close(metric.per_sample()["ssim_torchmetrics"], expected)


def test_torchmetrics_default_reads_higher_on_inpainting_results():
    """Composited results keep the original's border: the padded border windows of torchmetrics'
    default are perfect matches that the valid positions leave out."""
    image, noisy = _random_pair(size=48)
    mask = _box_mask(3, 48, 12, 36, 12, 36)
    result = noisy * mask + image * (1 - mask)
    metric = InpaintingMetrics()
    metric.update(result, image, mask)
    values = metric.per_sample()
    assert (values["ssim_torchmetrics"] > values["ssim"] + 0.01).all(), values


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    image, result = _random_pair()
    preds, target = to_unit(result).double(), to_unit(image).double()
    ours = ssim_per_sample(preds, target)
    for sample in range(preds.shape[0]):
        reference = metrics.structural_similarity(
            preds[sample].numpy(),
            target[sample].numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=0,
        )
        assert ours[sample].item() == pytest.approx(reference, abs=1e-6)


def test_hole_ssim_is_ssim_of_the_bounding_box_crop():
    image, result = _random_pair(batch=2)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 4:20, 6:30] = 1.0
    mask[1, :, 10:13, 12:14] = 1.0  # L-shaped hole; its box is 3..30 x 12..28
    mask[1, :, 3:30, 26:28] = 1.0
    preds, target = to_unit(result), to_unit(image)
    expected = torch.cat(
        [
            ssim_per_sample(preds[:1, :, 4:20, 6:30], target[:1, :, 4:20, 6:30]),
            ssim_per_sample(preds[1:, :, 3:30, 12:28], target[1:, :, 3:30, 12:28]),
        ]
    )
    metric = InpaintingMetrics()
    metric.update(result, image, mask)
    torch.testing.assert_close(metric.per_sample()["ssim_hole"], expected, atol=1e-6, rtol=0)
    assert hole_boxes(mask).tolist() == [[4, 20, 6, 30], [3, 30, 12, 28]]


def test_small_hole_box_grows_to_the_window_inside_the_image():
    image, result = _random_pair(batch=2)
    preds, target = to_unit(result), to_unit(image)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 20:23, 20:23] = 1.0  # 3x3 in the middle: grown to 11x11 centred, rows 16..27
    mask[1, :, 0:2, 30:32] = 1.0  # 2x2 in the top-right corner: the 11x11 corner crop
    expected = torch.cat(
        [
            ssim_per_sample(preds[:1, :, 16:27, 16:27], target[:1, :, 16:27, 16:27]),
            ssim_per_sample(preds[1:, :, 0:11, 21:32], target[1:, :, 0:11, 21:32]),
        ]
    )
    torch.testing.assert_close(hole_ssim_per_sample(preds, target, mask), expected)


def test_empty_hole_raises():
    image, result = _random_pair(batch=2)
    mask = _box_mask(2, 32, 8, 16, 8, 16)
    mask[1] = 0.0
    with pytest.raises(ValueError, match=r"samples \[1\]"):
        InpaintingMetrics().update(result, image, mask)


def test_bad_mask_shape_raises():
    image, result = _random_pair(batch=2)
    with pytest.raises(ValueError, match="mask must be"):
        InpaintingMetrics().update(result, image, torch.ones(2, 3, 32, 32))


def _offset_batch(offsets_unit: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey images whose results differ by ``offsets_unit`` ([0,1] units) everywhere."""
    image = torch.zeros(len(offsets_unit), 3, 16, 16)
    result = image + 2 * torch.tensor(offsets_unit).view(-1, 1, 1, 1)
    return result, image, _box_mask(len(offsets_unit), 16, 4, 12, 4, 12)


def test_summary_statistics_on_known_values():
    metric = InpaintingMetrics()
    metric.update(*_offset_batch([0.1, 0.01]))  # PSNR 20 and 40 dB
    metric.update(*_offset_batch([0.001]))  # 60 dB
    psnr = metric.summary()["psnr"]
    assert psnr["n"] == 3
    assert psnr["mean"] == pytest.approx(40.0, abs=1e-3)
    assert psnr["std"] == pytest.approx(20.0, abs=1e-3)
    assert psnr["max"] == pytest.approx(60.0, abs=1e-3)
    assert psnr["min"] == pytest.approx(20.0, abs=1e-3)
    assert psnr["ci95"] == pytest.approx(1.96 * 20.0 / math.sqrt(3), abs=1e-3)
    assert metric.compute()["psnr"].item() == pytest.approx(40.0, abs=1e-3)


def test_mean_is_over_samples_not_over_batches():
    metric = InpaintingMetrics()
    metric.update(*_offset_batch([0.1, 0.1, 0.1]))  # 20 dB x 3
    metric.update(*_offset_batch([0.01]))  # 40 dB x 1
    assert metric.compute()["psnr"].item() == pytest.approx(25.0, abs=1e-3)


def test_reset_forgets_earlier_samples():
    metric = InpaintingMetrics()
    metric.update(*_offset_batch([0.1, 0.1]))
    metric.reset()
    with pytest.raises(ValueError, match="no samples"):
        metric.summary()
    metric.update(*_offset_batch([0.01]))
    assert metric.summary()["psnr"]["n"] == 1
    assert metric.compute()["psnr"].item() == pytest.approx(40.0, abs=1e-3)


def test_merged_states_equal_one_metric_over_both_batches():
    # merge_state applies the dist_reduce_fx ("cat"), as a DDP sync would (order may differ).
    first, second = _offset_batch([0.1, 0.02]), _offset_batch([0.005])
    merged, other, together = InpaintingMetrics(), InpaintingMetrics(), InpaintingMetrics()
    merged.update(*first)
    other.update(*second)
    merged.merge_state(other)
    together.update(*first)
    together.update(*second)
    for name, values in together.per_sample().items():
        merged_values = merged.per_sample()[name]
        torch.testing.assert_close(merged_values.sort().values, values.sort().values, msg=name)


def test_nonpositive_ssim_sigma_is_rejected():
    with pytest.raises(ValueError, match="ssim_sigma must be positive"):
        InpaintingMetrics(ssim_sigma=0.0)


def test_batched_hole_ssim_matches_cropping_each_box() -> None:
    """Reference: crop each (grown) bounding box and run whole-image SSIM on the crop."""
    gen = torch.Generator().manual_seed(3)
    b, size, k = 12, 40, 11
    preds = torch.rand(b, 3, size, size, generator=gen)
    target = (preds + 0.2 * torch.rand(b, 3, size, size, generator=gen)).clamp(0, 1)
    mask = torch.zeros(b, 1, size, size)
    for i in range(b):
        h, w = torch.randint(1, 30, (2,), generator=gen).tolist()
        top = torch.randint(0, size - h + 1, (1,), generator=gen).item()
        left = torch.randint(0, size - w + 1, (1,), generator=gen).item()
        mask[i, :, top : top + h, left : left + w] = 1
    mask[0] = 0
    mask[0, :, 0:2, 38:40] = 1  # a 2x2 hole in a corner: the box grows to 11x11 inside the image
    expected = []
    for i, (t, bt, lf, rt) in enumerate(hole_boxes(mask).tolist()):
        grow_h, grow_w = max(0, k - (bt - t)), max(0, k - (rt - lf))
        t = max(0, min(t - grow_h // 2, size - k)) if grow_h else t
        bt = t + k if grow_h else bt
        lf = max(0, min(lf - grow_w // 2, size - k)) if grow_w else lf
        rt = lf + k if grow_w else rt
        crop = (slice(i, i + 1), slice(None), slice(t, bt), slice(lf, rt))
        expected.append(ssim_per_sample(preds[crop], target[crop]))
    got = hole_ssim_per_sample(preds, target, mask)
    torch.testing.assert_close(got, torch.cat(expected), rtol=1e-5, atol=1e-6)


def test_ssim_in_cpu_chunks_equals_one_sample_at_a_time() -> None:
    gen = torch.Generator().manual_seed(4)
    preds = torch.rand(19, 3, 24, 24, generator=gen)
    target = torch.rand(19, 3, 24, 24, generator=gen)
    one_by_one = torch.cat(
        [ssim_per_sample(preds[i : i + 1], target[i : i + 1]) for i in range(19)]
    )
    torch.testing.assert_close(ssim_per_sample(preds, target), one_by_one)


def test_hole_metrics_never_read_the_prediction_outside_the_hole():
    """The hole metrics' contract: changing the prediction outside the hole changes the whole
    image's PSNR/SSIM and leaves the hole's untouched (hole PSNR for any hole, hole SSIM for a
    rectangular hole at least one SSIM window wide, whose box is the hole itself)."""
    image, result = _random_pair(batch=2, size=40, seed=3)
    mask = _box_mask(2, 40, 6, 30, 10, 34)  # 24 x 24, wider than the 11 px window
    scattered = (torch.rand(2, 1, 40, 40, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    elsewhere = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(5)) * 2 - 1
    for hole, names in ((mask, ("psnr_hole", "ssim_hole")), (scattered, ("psnr_hole",))):
        changed = torch.where(hole.bool(), result, elsewhere)
        before, after = InpaintingMetrics(), InpaintingMetrics()
        before.update(result, image, hole)
        after.update(changed, image, hole)
        for name in names:
            assert torch.equal(before.per_sample()[name], after.per_sample()[name]), name
        for name in ("psnr", "ssim"):
            assert not torch.allclose(before.per_sample()[name], after.per_sample()[name]), name


def test_raw_output_metrics_score_the_output_before_compositing():
    image, output = _random_pair(batch=2, size=32, seed=7)
    mask = _box_mask(2, 32, 8, 24, 8, 24)
    result = torch.where(mask.bool(), output, image)  # pasted
    metric = InpaintingMetrics()
    metric.update(result, image, mask, raw=output)
    values = metric.per_sample()
    torch.testing.assert_close(values["psnr_hole_raw"], values["psnr_hole"])
    assert (values["psnr_raw"] < values["psnr"] - 3).all()  # the output's own known pixels count
    alone = InpaintingMetrics()
    alone.update(output, image, torch.ones_like(mask))  # every pixel a hole: raw == composite
    torch.testing.assert_close(values["psnr_raw"], alone.per_sample()["psnr"])
    torch.testing.assert_close(values["ssim_raw"], alone.per_sample()["ssim"])
    fill = InpaintingMetrics()
    fill.update(result, image, mask)  # no raw output: a fill's raw figures are its result's
    for name in ("psnr", "ssim", "psnr_hole", "ssim_hole"):
        assert torch.equal(fill.per_sample()[f"{name}_raw"], fill.per_sample()[name])
    with pytest.raises(ValueError, match=r"raw must be \(B,3,H,W\)"):
        metric.update(result, image, mask, raw=output[:1])


def test_metrics_under_bf16_autocast_are_the_fp32_ones():
    # a bf16-mixed training validates under autocast: SSIM's window variances must not run in
    # bf16 (on smooth faces they cancel, and SSIM read 0.06 for 0.70)
    image, _ = _random_pair(batch=4, size=64)
    image = 0.9 + 0.1 * image  # bright and smooth, like skin: E[x^2] - E[x]^2 cancels in bf16
    mask = _box_mask(4, 64, 16, 48, 16, 48)
    result = torch.where(mask.bool(), image.mean((2, 3), keepdim=True), image)
    summaries = []
    for bf16 in (False, True):
        metrics = InpaintingMetrics()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            metrics.update(result, image, mask)
        summaries.append({name: value["mean"] for name, value in metrics.summary().items()})
    assert summaries[1] == pytest.approx(summaries[0], rel=1e-6)
