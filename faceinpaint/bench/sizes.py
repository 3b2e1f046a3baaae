"""Model and run sizes of the benchmarks, and the synthetic batch they time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

PAPER_VAEGAN = dict(
    image_size=128,
    latent_dim=512,
    base_channels=64,
    max_channels=512,
    num_layers=5,
    critic_base_channels=64,
    critic_max_channels=512,
    local_size=64,
)
PAPER_DCGAN = dict(latent_dim=100, ngf=64, ndf=64, image_size=64)
# LandmarkNet kwargs of the thesis DCGAN configs' landmark term (configs/landmarks/celeba-half-64-fast.yaml)
THESIS_LANDMARK_NET = dict(widths=[8, 16, 32, 48, 64], heatmap_stride=4)
PAPER_STAGE_BOUNDARIES = (15000, 25000, 40000)  # the VAE-GAN curriculum, generator updates


@dataclass(frozen=True)
class Sizes:
    """What each benchmark runs. ``label`` says which set (paper full, paper CPU default, quick).

    Args:
        vaegan / dcgan: model kwargs (the papers' sizes unless ``quick``).
        vaegan_batches: batch sizes of the VAE-GAN training rows.
        vaegan_rounds: timed rounds of each VAE-GAN row (None: the run's ``repeats``).
        fit_warmup: untimed training batches before the timed one in each fit.
        dcgan_batch: batch size of the DCGAN training row.
        candidates: latents searched per image.
        search_images: images searched together (B) in the search rows.
        search_iterations: Adam steps timed per search (K), extrapolated to 1000.
        dlib_search_images: B of the dlib-in-the-loop rows (CPU only).
        landmark_faces: faces per landmark timing.
        data_batches: loader batches per data timing.
        flops_batch: batch at which FLOPs are counted (FLOPs are linear in the batch).
        warmup: untimed rounds before the timed ones, unless the run gives its own.
        repeats: timed rounds, unless the run gives its own.
        quality_faces: faces searched together in the time-to-quality rows.
        quality_random: (candidates, iterations) of the random-start reference there.
        quality_encoder: (candidates, iterations) of the encoder start there: a tenth of the
            reference's candidate-iterations, the goal of issue 13 item 2.
        peak_size: side of the square matmuls that measure the device's peak (big enough to
            saturate it).
        photo_width: width of the photo (4:3) the per-photo inpaint row fills.
    """

    label: str
    vaegan: dict[str, Any]
    vaegan_batches: tuple[int, ...]
    vaegan_rounds: int | None
    fit_warmup: int
    dcgan: dict[str, Any]
    dcgan_batch: int
    candidates: int
    search_images: tuple[int, ...]
    search_iterations: int
    dlib_search_images: tuple[int, ...]
    landmark_faces: int
    data_batches: int
    flops_batch: int
    warmup: int
    repeats: int
    quality_faces: int = 16
    quality_random: tuple[int, int] = (64, 1000)
    quality_encoder: tuple[int, int] = (8, 800)
    peak_size: int = 2048
    photo_width: int = 2400


def paper_sizes(device: torch.device, full: bool = False) -> Sizes:
    """The papers' model sizes. On a GPU, or with ``full``, the long run; on a CPU by default a
    short one (smaller and fewer timed batches, few search iterations: minutes, not hours)."""
    gpu = Sizes(
        label="paper",
        vaegan=PAPER_VAEGAN,
        vaegan_batches=(16,),
        vaegan_rounds=3,  # fp32, bf16, bf16 + compile: 9 fits per stage, compilation included
        fit_warmup=1,
        dcgan=PAPER_DCGAN,
        dcgan_batch=128,
        candidates=64,
        search_images=(1, 4, 16, 64),
        search_iterations=20,
        dlib_search_images=(1,),
        landmark_faces=64,
        data_batches=50,
        flops_batch=16,
        warmup=1,
        repeats=5,
        quality_faces=64,
        peak_size=8192,
    )
    if device.type == "cuda":
        return gpu
    cpu_full = replace(
        gpu,
        label="paper, full CPU run",
        vaegan_batches=(16, 32),
        vaegan_rounds=None,
        dcgan_batch=64,
        search_images=(1, 4, 16),
        search_iterations=5,
        landmark_faces=16,
        data_batches=10,
        repeats=3,
        quality_faces=16,
        peak_size=2048,
    )
    if full:
        return cpu_full
    return replace(
        cpu_full,
        label="paper models, short CPU run (--full for the long one)",
        vaegan_batches=(2,),
        vaegan_rounds=3,
        fit_warmup=1,
        search_images=(1, 16),
        search_iterations=1,
        flops_batch=1,
        warmup=0,
        quality_faces=8,
        quality_random=(16, 200),
        quality_encoder=(4, 80),
    )


def quick_sizes() -> Sizes:
    """Tiny models and runs: seconds, for tests and the GPU check's dry run."""
    return Sizes(
        label="quick (tiny models)",
        vaegan=dict(
            image_size=32,
            latent_dim=8,
            base_channels=4,
            max_channels=8,
            num_layers=3,
            critic_base_channels=4,
            critic_max_channels=8,
            local_size=16,
        ),
        vaegan_batches=(2, 4),
        vaegan_rounds=None,
        fit_warmup=1,
        dcgan=dict(latent_dim=8, ngf=4, ndf=4, image_size=32),
        dcgan_batch=4,
        candidates=4,
        search_images=(1, 2),
        search_iterations=2,
        dlib_search_images=(1,),
        landmark_faces=2,
        data_batches=2,
        flops_batch=2,
        warmup=0,
        repeats=2,
        quality_faces=2,
        quality_random=(4, 8),
        quality_encoder=(2, 4),
        peak_size=256,
        photo_width=800,
    )


def sized_by_dcgan_config(sizes: Sizes, config: str | Path) -> Sizes:
    """``sizes`` with the DCGAN and the search's candidates of a DCGAN config's model
    (``latent_dim``, ``ngf``, ``ndf``, ``image_size``, ``search.candidates``; those it leaves out
    keep the paper's), e.g. configs/dcgan/celeba-half-cpu.yaml."""
    init = (yaml.safe_load(Path(config).read_text()).get("model") or {}).get("init_args") or {}
    if not {"ngf", "ndf", "search"} & set(init):
        raise ValueError(
            f"{str(config)!r} is not a DCGAN config: expected model.init_args with ngf, ndf or "
            f"search (configs/dcgan/*.yaml), got keys {sorted(init)}"
        )
    dcgan = {key: init.get(key, value) for key, value in sizes.dcgan.items()}
    return replace(
        sizes,
        label=f"{sizes.label}; DCGAN and search sized by {config}",
        dcgan=dcgan,
        candidates=(init.get("search") or {}).get("candidates", sizes.candidates),
    )


def synthetic_batch(
    size: int, image_size: int, device: torch.device, seed: int = 0
) -> dict[str, Tensor]:
    """A batch-contract batch of smooth random images with one centred square hole each."""
    from faceinpaint.data.masks import MaskSpec, make_masks

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(size, 3, 8, 8, generator=generator) * 2 - 1
    image = nn.functional.interpolate(coarse, size=image_size, mode="bilinear").clamp(-1, 1)
    index = torch.arange(size)
    mask = make_masks(MaskSpec(kind="center"), index, (image_size, image_size), 0)
    return {"image": image.to(device), "mask": mask.to(device), "index": index.to(device)}
