"""Time to quality: how long the latent search takes to reach the random-start search's result,
from random starts and from the latent encoder's (issue 13, item 2).

Unlike the other benchmarks this one needs trained weights (speed does not depend on them,
quality does): by default the shipped demo DCGAN and its encoder (``faceinpaint/assets``) on the
demo protocol's embedded val faces (configs/eval/demo.yaml), centre mask; ``quality_dcgan``,
``quality_encoder`` and ``quality_config`` name others (a celeba-half run and
configs/eval/thesis.yaml, say).

The reference is the random-start search at its whole budget, N x K candidate-iterations (the
thesis's 64 x 1000 on a GPU and in the full CPU run). The search's quality at an iteration is the
mean hole PSNR, over the faces, of the candidate it would return then (each face's lowest total
loss; plain composite, no blending); the target is the reference's at its end. Each start is
scored at snapshot iterations (0, 1, 2, 5, 10, 20, 50, ...) and its time to the target is the
time of the first snapshot at or above it, an upper bound at that granularity; the random start's
own time is likewise the first snapshot at its final quality, often well before its end (the
whole search's time is in its note). Time counts the search's steps and the encoder's forward
pass, not the scoring. One round per start (random, then encoder), so no spread: the two times
differ by much more than rounds do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import Tensor

from faceinpaint.batch import IMAGE, INDEX, MASK, composite, to_unit
from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import Sizes
from faceinpaint.device import synchronize
from faceinpaint.latent_search import (
    LatentSearch,
    encoder_starts,
    frozen_eval,
    initial_latents,
    select_best,
)
from faceinpaint.losses.latent_search import context_weights
from faceinpaint.metrics import hole_psnr_per_sample
from faceinpaint.paths import ASSETS, resolve_config

BENCHMARK = "search time-to-quality"
DEFAULT_CONFIG = "configs/eval/demo.yaml"


@dataclass
class Curve:
    """Mean hole PSNR of the returned candidate and the search's seconds, at each snapshot."""

    iterations: list[int]
    psnr_hole: list[float]
    seconds: list[float]

    def first_reaching(self, target: float) -> int | None:
        """Position of the first snapshot whose quality is at least ``target`` (None: never)."""
        return next((i for i, value in enumerate(self.psnr_hole) if value >= target), None)


def snapshot_iterations(iterations: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 50, ... below ``iterations``, then ``iterations`` itself."""
    points, scale = [0], 1
    while scale < iterations:
        points += [step * scale for step in (1, 2, 5) if step * scale < iterations]
        scale *= 10
    return sorted(set(points)) + ([iterations] if iterations > 0 else [])


def _quality(
    search: LatentSearch,
    latent: Tensor,
    image: Tensor,
    mask: Tensor,
    damaged: Tensor,
    weights: Tensor,
) -> float:
    """Mean hole PSNR of the candidates the search would return at ``latent`` (B*N, latent_dim)."""
    with torch.no_grad():
        total, _, generated = search.objective(
            latent, damaged, weights, None, final=False, landmark_term=None
        )
        rows = torch.arange(image.shape[0], device=image.device)
        chosen = composite(generated[rows, select_best(total)], image, mask)
        return float(hole_psnr_per_sample(to_unit(chosen), to_unit(image), mask).mean())


def search_curve(
    search: LatentSearch,
    start: Tensor,
    image: Tensor,
    mask: Tensor,
    iterations: int,
    seconds: float,
) -> Curve:
    """Search from ``start`` (B,N,latent_dim) for ``iterations`` Adam steps on (B,3,H,W) faces
    and (B,1,H,W) masks, scoring at :func:`snapshot_iterations`; ``seconds`` already spent
    (the encoder's forward) starts the clock."""
    device = image.device
    hole = mask.to(image.dtype)
    damaged = torch.where(hole.bool(), torch.zeros_like(image), image)
    weights = context_weights(hole, search.settings.context_window)
    snapshots = snapshot_iterations(iterations)
    curve = Curve([], [], [])
    with frozen_eval(search.generator, search.discriminator), torch.enable_grad():
        latent = start.to(image.dtype).flatten(0, 1).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([latent], lr=search.settings.lr, betas=search.settings.betas)
        done = 0
        for snapshot in snapshots:
            synchronize(device)
            began = time.perf_counter()
            for _ in range(snapshot - done):
                search.step(latent, optimizer, damaged, weights, None, None)
            synchronize(device)
            seconds += time.perf_counter() - began
            done = snapshot
            curve.iterations.append(snapshot)
            curve.seconds.append(seconds)
            curve.psnr_hole.append(_quality(search, latent, image, mask, damaged, weights))
    return curve


def _faces(config: str | Path, count: int, image_size: int, device: torch.device):
    """(image, mask, index) of the first ``count`` faces of the config's protocol split under its
    first mask (the thesis configs' centre square), at the generator's size."""
    from faceinpaint.data.datamodule import FaceDataModule
    from faceinpaint.eval.protocols import as_protocol
    from faceinpaint.eval.tasks import task_datamodule

    sections = yaml.safe_load(resolve_config(config).read_text())
    protocol = as_protocol(sections["protocol"])
    task = next(iter(protocol.tasks()))
    if task.image_size != image_size:
        raise ValueError(
            f"{config}: the protocol's faces are {task.image_size} px, the DCGAN's {image_size} px"
        )
    datamodule = task_datamodule(FaceDataModule(**sections.get("data", {})), task)
    dataset = datamodule.dataset(task.split)
    if len(dataset) < count:
        raise ValueError(
            f"{config}: {count} faces asked for, its {task.split} split has {len(dataset)}"
        )
    items = {k: v.to(device) for k, v in dataset.__getitems__(list(range(count))).items()}
    batch = datamodule.prepare_batch(items, "test")
    return batch[IMAGE], batch[MASK], batch[INDEX], f"{task.split} faces, {task.mask} mask"


def bench_time_to_quality(
    device: torch.device,
    sizes: Sizes,
    dcgan: str | Path | None = None,
    encoder: str | Path | None = None,
    config: str | Path | None = None,
) -> Iterator[Row]:
    """The random-start reference, the encoder start's time to its quality, and their ratio."""
    from faceinpaint.lit.inference import load_inpainter
    from faceinpaint.lit.loading import load_latent_encoder

    dcgan = Path(dcgan) if dcgan is not None else ASSETS / "dcgan-demo.safetensors"
    encoder = Path(encoder) if encoder is not None else ASSETS / "encoder-demo.safetensors"
    config = config if config is not None else DEFAULT_CONFIG
    model = load_inpainter(str(dcgan), poisson_iterations=0, landmark_weight=0.0).to(device)
    latent_encoder = load_latent_encoder(str(encoder)).to(device, torch.float32).eval()
    search = model.latent_search()
    generator = model.generator
    image, mask, index, faces = _faces(
        config, sizes.quality_faces, model.hparams.image_size, device
    )
    random_n, random_k = sizes.quality_random
    encoder_n, encoder_k = sizes.quality_encoder

    start = initial_latents(
        index, random_n, generator.latent_dim, search.latent_prior, search.settings.seed
    )
    random = search_curve(search, start, image, mask, random_k, 0.0)

    damaged = torch.where(mask.bool(), torch.zeros_like(image), image)
    synchronize(device)
    began = time.perf_counter()
    start = encoder_starts(
        latent_encoder,
        damaged,
        mask,
        index,
        encoder_n,
        search.settings.encoder_perturbation,
        search.settings.seed,
    )
    synchronize(device)
    encoded = search_curve(search, start, image, mask, encoder_k, time.perf_counter() - began)

    per_face = image.shape[0]
    target = random.psnr_hole[-1]
    where = f"{per_face} {faces} of {config}; weights {dcgan.name}, {encoder.name}"
    random_reach = random.first_reaching(target)  # at the latest its last snapshot
    random_seconds = random.seconds[random_reach] / per_face
    whole = random.seconds[-1] / per_face
    yield Row(
        BENCHMARK,
        device.type,
        f"random start {random_n} x {random_k}",
        random_seconds,
        "s/face",
        n=1,
        note=(
            f"to its own final hole PSNR, {target:.2f} dB (the target), first reached at "
            f"{random_n} x {random.iterations[random_reach]}; the whole search {whole:.3g} s/face; "
            f"{where}"
        ),
        extra={
            "target_psnr_hole": target,
            "curve": vars(random),
            "candidate_iterations": random_n * random_k,
            "reached_at_iteration": random.iterations[random_reach],
            "whole_search_seconds_per_face": whole,
        },
    )
    reach = encoded.first_reaching(target)
    seconds = None if reach is None else encoded.seconds[reach] / per_face
    reached = (
        f"reached at {encoder_n} x {encoded.iterations[reach]} = "
        f"{encoder_n * encoded.iterations[reach]} candidate-iterations"
        if reach is not None
        else f"not reached within {encoder_n} x {encoder_k} (best {max(encoded.psnr_hole):.2f} dB)"
    )
    yield Row(
        BENCHMARK,
        device.type,
        f"encoder start {encoder_n} x {encoder_k}",
        seconds,
        "s/face",
        n=1,
        note=f"to the random start's hole PSNR; {reached}; final {encoded.psnr_hole[-1]:.2f} dB",
        extra={
            "target_psnr_hole": target,
            "curve": vars(encoded),
            "reached_at_iteration": None if reach is None else encoded.iterations[reach],
        },
    )
    yield Row(
        BENCHMARK,
        device.type,
        "random / encoder time to the random start's quality",
        None if seconds is None or seconds <= 0 else random_seconds / seconds,
        "x",
        n=1,
        note=(
            "speed-up of the encoder start, each to its first snapshot at the target (the "
            "random start's whole search over the encoder's: "
            + ("n/a" if seconds is None or seconds <= 0 else f"{whole / seconds:.3g}x")
            + "); n/a when the encoder start did not reach the target"
        ),
    )
