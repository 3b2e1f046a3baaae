from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from faceinpaint.batch import composite, from_unit
from faceinpaint.data.masks import MaskSpec, make_masks
from faceinpaint.metrics import hole_psnr_per_sample
from faceinpaint.ops import fills
from faceinpaint.ops.fills import (
    BASELINES,
    FILL_PACKAGES,
    check_fill_names,
    harmonic_fill,
    mean_fill,
    nearest_neighbour_fill,
    opencv_fill,
)

CELEBA = Path(__file__).resolve().parents[2].parent / "shared/data/celeba-half"
SIZE = 32


def _smooth_images(batch: int, seed: int = 0) -> torch.Tensor:
    """(batch,3,SIZE,SIZE) in [-1,1], smooth like a face at low resolution."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 4, 4, generator=generator) * 1.6 - 0.8
    return torch.nn.functional.interpolate(coarse, size=SIZE, mode="bicubic").clamp(-1, 1)


def _masks() -> torch.Tensor:
    """(3,1,SIZE,SIZE): an interior square, an irregular interior blob, a hole on the border."""
    mask = torch.zeros(3, 1, SIZE, SIZE)
    mask[0, :, 8:24, 10:26] = 1.0
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    blob = ((x - 12) ** 2 + (y - 14) ** 2 < 30) | ((x - 20) ** 2 / 4 + (y - 20) ** 2 < 12)
    mask[1, 0] = blob.float()
    mask[2, :, 0:12, 20:32] = 1.0
    return mask


def _planes(coefficients: list[tuple[float, float, float]]) -> torch.Tensor:
    """(len,3,SIZE,SIZE) images a x + b y + c, the same in every channel."""
    y, x = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32),
        torch.arange(SIZE, dtype=torch.float32),
        indexing="ij",
    )
    planes = [a * x + b * y + c for a, b, c in coefficients]
    return torch.stack(planes)[:, None].expand(-1, 3, -1, -1).contiguous()


ALL_FILLS = {
    **BASELINES,
    "nn": partial(nearest_neighbour_fill, bank=_smooth_images(20, seed=1), chunk=6),
}


@pytest.mark.parametrize("name", sorted(ALL_FILLS))
def test_known_pixels_are_preserved_exactly(name):
    image, mask = _smooth_images(3), _masks()
    result = ALL_FILLS[name](image, mask)
    assert result.shape == image.shape and result.dtype == image.dtype
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(result[known], image[known]), f"{name} changed known pixels"
    assert not torch.equal(result[~known], image[~known]), f"{name} left the hole untouched"


@pytest.mark.parametrize("name", sorted(ALL_FILLS))
def test_hole_content_is_ignored(name):
    # Callers may pass the damaged network input (hole zeroed or noised) instead of the image.
    image, mask = _smooth_images(3), _masks()
    generator = torch.Generator().manual_seed(2)
    noised = torch.where(mask.bool(), torch.rand(image.shape, generator=generator) * 2 - 1, image)
    torch.testing.assert_close(ALL_FILLS[name](noised, mask), ALL_FILLS[name](image, mask))


@pytest.mark.parametrize("name", sorted(ALL_FILLS))
def test_batched_equals_per_sample(name):
    image, mask = _smooth_images(3), _masks()
    batched = ALL_FILLS[name](image, mask)
    single = torch.cat([ALL_FILLS[name](image[i : i + 1], mask[i : i + 1]) for i in range(3)])
    # harmonic: each call solves over its own hole box, so agreement is to the solver tolerance.
    torch.testing.assert_close(batched, single, atol=2e-4 if name == "harmonic" else 1e-6, rtol=0)


@pytest.mark.parametrize(
    "coefficients", [(0.05, 0.0, -0.8), (0.0, -0.04, 0.6), (0.03, -0.02, 0.1)], ids=["x", "y", "xy"]
)
def test_harmonic_fill_reproduces_a_plane_in_interior_holes(coefficients):
    plane = _planes([coefficients] * 2)
    mask = _masks()[:2]  # the square and the blob, neither touching the border
    filled = harmonic_fill(plane, mask)
    error = (filled - plane).abs().max().item()
    assert error < 1e-4, f"plane {coefficients}: max error {error:.2e}, expected < 1e-4"


def test_harmonic_fill_has_neumann_image_borders():
    # A ramp in x is harmonic and has zero normal derivative on the top and bottom borders, so a
    # band hole from the top to the bottom border is filled exactly; a Dirichlet-zero border
    # would drag the ends towards 0.
    ramp = _planes([(0.05, 0.0, -0.8)])
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., 10:22] = 1.0
    filled = harmonic_fill(ramp, mask)
    assert (filled - ramp).abs().max().item() < 1e-4


def test_harmonic_fill_of_a_constant_is_the_constant():
    image = torch.full((3, 3, SIZE, SIZE), 0.37)
    filled = harmonic_fill(image, _masks())
    assert (filled - 0.37).abs().max().item() < 1e-6


def test_harmonic_fill_more_iterations_get_closer_to_the_solution():
    image, mask = _smooth_images(1), _masks()[:1]
    reference = harmonic_fill(image, mask, iters=2000, tol=1e-10)
    rough = (harmonic_fill(image, mask, iters=3, tol=0.0) - reference).abs().max()
    converged = (harmonic_fill(image, mask) - reference).abs().max()
    assert converged < 1e-4 < rough, f"3 iterations: {rough:.2e}, default: {converged:.2e}"


def test_mean_fill_gives_the_area_weighted_mean_of_the_known_colours():
    # Known region: 3/4 of it colour a, 1/4 colour b; the hole gets 0.75 a + 0.25 b per channel.
    a, b = torch.tensor([0.8, -0.2, 0.1]), torch.tensor([-0.6, 0.4, 1.0])
    image = a.view(1, 3, 1, 1).repeat(1, 1, SIZE, SIZE)
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., : SIZE // 2, :] = 1.0  # top half is the hole
    image[..., 3 * SIZE // 4 :, :] = b.view(1, 3, 1, 1)  # half of the known bottom half
    image[..., : SIZE // 4, :] = b.view(1, 3, 1, 1)  # inside the hole: must not count
    expected = 0.5 * a + 0.5 * b
    filled = mean_fill(image, mask)
    torch.testing.assert_close(filled[0, :, 0, 0], expected)
    torch.testing.assert_close(filled[0, :, SIZE // 2 - 1, SIZE - 1], expected)

    image[..., 3 * SIZE // 4 :, : SIZE // 2] = a.view(1, 3, 1, 1)  # b now covers 1/4 of the known
    torch.testing.assert_close(mean_fill(image, mask)[0, :, 0, 0], 0.75 * a + 0.25 * b)


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_opencv_fill_stays_in_range_and_fills_a_constant_with_the_constant(method):
    image, mask = _smooth_images(3), _masks()
    filled = opencv_fill(image, mask, method=method)
    assert filled.min() >= -1.0 and filled.max() <= 1.0
    constant = torch.full_like(image, from_unit(torch.tensor(100 / 255)).item())
    error = (opencv_fill(constant, mask, method=method) - constant).abs().max().item()
    # OpenCV's Telea drifts by up to 3 uint8 levels on a flat image; Navier-Stokes is exact.
    tolerance = {"telea": 2 * 3.5 / 255, "ns": 1e-6}[method]
    assert error < tolerance, f"{method}: constant image filled with error {error:.4f}"


def test_opencv_fill_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="'telea' or 'ns'"):
        opencv_fill(_smooth_images(1), _masks()[:1], method="fast")


@pytest.mark.parametrize("planted_at", [0, 13, 19])
def test_nearest_neighbour_fill_picks_the_planted_match(planted_at):
    image, mask = _smooth_images(3), _masks()
    bank = _smooth_images(20, seed=1)
    # Bank face = the image on its known pixels, something else in the hole.
    bank[planted_at] = torch.where(mask[1].bool(), -image[1], image[1])
    filled = nearest_neighbour_fill(image, mask, bank, chunk=6)
    torch.testing.assert_close(filled[1], bank[planted_at])


def test_nearest_neighbour_fill_rejects_a_bank_of_other_size():
    with pytest.raises(ValueError, match="bank must be"):
        nearest_neighbour_fill(_smooth_images(1), _masks()[:1], torch.zeros(4, 3, 16, 16))


@pytest.mark.data
def test_harmonic_beats_mean_fill_on_real_faces():
    pytest.importorskip("PIL")
    from PIL import Image

    if not CELEBA.is_dir():
        pytest.skip(f"no CelebA faces at {CELEBA}")
    faces = [
        np.asarray(Image.open(CELEBA / "images" / f"{i:06d}.jpg").convert("RGB"))
        for i in range(1, 9)
    ]
    image = from_unit(torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255)
    height, width = image.shape[-2:]
    mask = torch.zeros(len(faces), 1, height, width)
    mask[..., height // 2 - 12 : height // 2 + 12, width // 2 - 12 : width // 2 + 12] = 1.0
    psnr = {
        name: hole_psnr_per_sample(
            (BASELINES[name](image, mask) + 1) / 2, (image + 1) / 2, mask
        ).mean()
        for name in ("mean", "harmonic")
    }
    assert psnr["harmonic"] > psnr["mean"] + 3.0, f"hole PSNR: {psnr}"


THESIS_MASKS = {
    "center": MaskSpec("center", side=0.5),
    "left": MaskSpec("left"),
    "right": MaskSpec("right"),
    "random_pixels": MaskSpec("random_pixels", fraction=0.8),
}


def _faces_64(batch: int) -> torch.Tensor:
    """(batch,3,64,64) in [-1,1], smooth with some texture, like a face at 64 px."""
    generator = torch.Generator().manual_seed(3)
    coarse = torch.rand(batch, 3, 8, 8, generator=generator) * 1.6 - 0.8
    smooth = torch.nn.functional.interpolate(coarse, size=64, mode="bicubic")
    return (smooth + 0.05 * torch.randn(batch, 3, 64, 64, generator=generator)).clamp(-1, 1)


@pytest.mark.parametrize("mask_kind", sorted(THESIS_MASKS))
@pytest.mark.parametrize("name", sorted(FILL_PACKAGES))
def test_package_fills_fill_every_thesis_mask_at_64_px_deterministically(name, mask_kind):
    image = _faces_64(2)
    mask = make_masks(THESIS_MASKS[mask_kind], torch.arange(2), 64)
    first, second = BASELINES[name](image, mask), BASELINES[name](image, mask)
    assert torch.equal(first, second), f"{name} is not deterministic on {mask_kind}"
    assert torch.equal(composite(first, image, mask), first)  # known pixels are the image's
    assert first.isfinite().all() and first.abs().max() <= 1.0
    hole = mask.bool().expand_as(image)
    assert not torch.equal(first[hole], image[hole])
    if mask_kind in ("left", "right"):
        return  # half a face has known pixels on one side only: the fills extrapolate
    # better than a flat mid-grey hole on smooth faces: the fill follows its surroundings
    grey = composite(torch.zeros_like(image), image, mask)
    psnr = {
        label: hole_psnr_per_sample((result + 1) / 2, (image + 1) / 2, mask).mean()
        for label, result in (("fill", first), ("grey", grey))
    }
    assert psnr["fill"] > psnr["grey"], f"{name} on {mask_kind}: hole PSNR {psnr}"


def test_biharmonic_fill_reproduces_a_plane_in_interior_holes():
    plane = _planes([(0.03, -0.02, 0.1)] * 2)
    error = (BASELINES["biharmonic"](plane, _masks()[:2]) - plane).abs().max().item()
    assert error < 1e-6, f"max error {error:.2e}, expected < 1e-6"


@pytest.mark.parametrize("name", sorted(FILL_PACKAGES))
def test_a_fill_whose_package_is_missing_is_a_one_line_error_naming_it(name, monkeypatch):
    module, package = FILL_PACKAGES[name]
    monkeypatch.setitem(FILL_PACKAGES, name, ("faceinpaint_no_such_module", package))
    message = rf"the '{name}' fill needs the package {package}, which is not installed here"
    with pytest.raises(ValueError, match=message) as raised:
        check_fill_names(["mean", name])
    assert "\n" not in str(raised.value)
    with pytest.raises(ValueError, match=message):
        BASELINES[name](_smooth_images(1), _masks()[:1])


def test_patchmatch_installed_without_its_native_library_is_named(monkeypatch):
    patchmatch = pytest.importorskip("patchmatch")
    monkeypatch.setattr(patchmatch, "patchmatch_available", False)
    with pytest.raises(ValueError, match="needs the package PyPatchMatch"):
        fills.check_fill_names(["patchmatch"])


def test_check_fill_names_names_every_unknown_fill_once():
    check_fill_names(["mean", "ns"])
    check_fill_names(["nn"], known=[*BASELINES, "nn"])
    with pytest.raises(
        ValueError, match=r"unknown classical fills \['blur', 'nn'\]; expected some of \['mean'"
    ):
        check_fill_names(["mean", "blur", "nn"])
