"""FLOPs of a training update and of a search iteration (``FlopCounterMode``: matmuls and
convolutions only), and the achieved FLOP/s of the timed rows against the peak measured in the
same run (:mod:`faceinpaint.bench.peak`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from faceinpaint.bench.dcgan import build_dcgan
from faceinpaint.bench.peak import measured_peaks
from faceinpaint.bench.rows import Row, peak_flops
from faceinpaint.bench.search import landmark_terms
from faceinpaint.bench.sizes import Sizes, synthetic_batch
from faceinpaint.bench.vaegan import build_vaegan


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """The parameters of ``modules`` without gradients, as Lightning's ``toggle_optimizer`` leaves
    those of the other optimizer during a step (no weight gradients computed for them)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions ``fn()`` runs (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def bench_flops(device: torch.device, sizes: Sizes) -> Iterator[Row]:
    """GFLOP per image of a VAE-GAN generator update per stage (its critic batches included) and
    of a DCGAN batch (counted at ``sizes.flops_batch``; linear in the batch), and per search
    iteration of 1 image x N candidates."""
    from faceinpaint.batch import composite, fill_hole
    from faceinpaint.latent_search import LatentSearch, SearchSettings
    from faceinpaint.models.vaegan import hole_windows

    counted = sizes.flops_batch
    batch = synthetic_batch(counted, sizes.vaegan["image_size"], device)
    image, mask = batch["image"], batch["mask"]
    for stage in (1, 2, 3):
        module = build_vaegan(sizes, stage, compiled=False).to(device)

        def generator_step(module=module, stage=stage) -> None:
            network_input = fill_hole(image, mask, "noise")
            windows = hole_windows(mask, module.hparams.local_size)
            with frozen(module.global_critic, module.local_critic):
                output, mu, logvar = module.generator(network_input)
                result = composite(output, image, mask)
                total, _ = module.generator_loss(stage, image, output, result, mu, logvar, windows)
                total.backward()

        def fresh_fake(module=module) -> None:
            with torch.no_grad():
                module.generator(fill_hole(image, mask, "noise"))

        with torch.no_grad():
            fake = composite(module.generator(fill_hole(image, mask, "noise"))[0], image, mask)

        def critic_step(module=module, fake=fake) -> None:
            windows = hole_windows(mask, module.hparams.local_size)
            with frozen(module.generator):
                total, _ = module.critic_losses(image, fake, windows)
                total.backward()

        # Algorithm 1 (lit/vaegan.py training_step): in stages 2-3 a generator update spans
        # n_critic batches, each a critic update on a fresh fake of the current generator; the
        # last batch's generator forward is the update's own, the others' are no-grad forwards
        n_critic = module.critic.n_critic if stage >= 2 else 0
        flops = count_flops(generator_step)
        if n_critic:
            flops += n_critic * count_flops(critic_step)
            flops += (n_critic - 1) * count_flops(fresh_fake)
        yield Row(
            "flops",
            device.type,
            f"vaegan stage {stage}, per image",
            flops / counted / 1e9,
            "GFLOP",
            note="one generator update"
            + (
                f" with its {n_critic} critic updates and {n_critic - 1} fresh-fake forwards"
                if n_critic
                else ""
            )
            + f", per image of the batch; counted at batch {counted}",
            extra={"key": ("vaegan", stage), "flops_per_update_per_image": flops / counted},
        )
    module = build_dcgan(sizes).to(device)
    real = synthetic_batch(counted, sizes.dcgan["image_size"], device)["image"]

    def dcgan_step() -> None:
        fake = module.generator(torch.rand(counted, sizes.dcgan["latent_dim"], device=device))
        with frozen(module.generator):
            d_loss, _ = module.discriminator_loss(real, fake)
            d_loss.backward()
        with frozen(module.discriminator):
            module.generator_loss(fake).backward()

    flops = count_flops(dcgan_step)
    yield Row(
        "flops",
        device.type,
        "dcgan, per image",
        flops / counted / 1e9,
        "GFLOP",
        note=f"discriminator + generator update; counted at batch {counted}",
        extra={"key": ("dcgan",), "flops_per_update_per_image": flops / counted},
    )
    one = synthetic_batch(1, sizes.dcgan["image_size"], device)
    for label, term in landmark_terms(with_dlib=False).items():
        term = term.to(device) if term is not None else None
        counts = []
        for iterations in (0, 1):
            search = LatentSearch(
                module.generator,
                module.discriminator,
                settings=SearchSettings(
                    candidates=sizes.candidates,
                    iterations=iterations,
                    landmark_weight=1.0 if term is not None else 0.0,
                ),
                landmark_term=term,
            )
            counts.append(count_flops(lambda s=search: s(one["image"], one["mask"], one["index"])))
        yield Row(
            "flops",
            device.type,
            f"search iteration, {label}",
            (counts[1] - counts[0]) / 1e9,
            "GFLOP",
            note=f"1 image x {sizes.candidates} candidates, one Adam step "
            "(a 1-iteration search minus a 0-iteration one)",
            extra={"key": ("search", label), "flops": counts[1] - counts[0]},
        )


def row_precision(row: Row) -> str:
    """The matmul precision a timed row runs at: bf16 variants; fp32 otherwise, which is TF32
    on CUDA where cuDNN's convolutions use it (``torch.backends.cudnn.allow_tf32``, on by
    default)."""
    if "bf16" in row.variant:
        return "bf16"
    if row.device == "cuda" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "fp32"


def achieved_flops(row: Row, counts: dict[tuple, float]) -> tuple[float, float, float] | None:
    """Achieved FLOP/s ``(median, at the row's low end, at its high end)`` of a timed row, from
    the FLOP rows' ``counts`` (:func:`flop_counts`); None for rows that are not timed paths.

    - VAE-GAN training: FLOPs of a generator update (critic batches included) per image of the
      batch x batch / seconds per generator update.
    - DCGAN training: FLOPs per image x images/s (one batch is one update).
    - Latent search: FLOPs of one iteration of 1 image x images / seconds per iteration.
    """
    if row.value is None:
        return None
    if row.benchmark == "vaegan train":
        per_image = counts.get(("vaegan", row.extra["stage"]))
        if per_image is None:
            return None
        # images/s counts every batch of an update (batch x batches_per_update images), and
        # per_image is the FLOPs of a whole update per image of one batch
        scale = per_image / row.extra["batches_per_update"]
    elif row.benchmark == "dcgan train":
        scale = counts.get(("dcgan",))
    elif row.benchmark == "latent search" and "ms_per_iteration" in row.extra:
        per_iteration = counts.get(("search", row.extra["landmark"]))
        if per_iteration is None:
            return None
        # images/s @1000 it is not the iteration rate: take ms per iteration (median only)
        rate = per_iteration * row.extra["images"] / (row.extra["ms_per_iteration"] / 1e3)
        return rate, rate, rate
    else:
        return None
    if scale is None:
        return None
    low = row.value if row.low is None else row.low
    high = row.value if row.high is None else row.high
    return scale * row.value, scale * low, scale * high


def flop_counts(rows: list[Row]) -> dict[tuple, float]:
    """``key -> FLOPs`` of the FLOP rows: per update per image (training), per iteration of one
    image (search)."""
    counts = {}
    for row in rows:
        if row.benchmark != "flops":
            continue
        extra = row.extra
        counts[extra["key"]] = extra.get("flops_per_update_per_image", extra.get("flops"))
    return counts


def achieved_rows(rows: list[Row], hardware: str) -> Iterator[Row]:
    """Achieved TFLOP/s of the training and search rows from the FLOP rows, each with its share
    of the peak measured in the same run (``peak`` rows) and, on a listed GPU, of its datasheet
    peak."""
    counts = flop_counts(rows)
    measured = measured_peaks(rows)
    for row in rows:
        achieved = achieved_flops(row, counts)
        if achieved is None:
            continue
        median, low, high = achieved
        precision = row_precision(row)
        shares = []
        peak = measured.get(precision)
        if peak:
            shares.append(
                f"{100 * median / peak:.0f}% of the measured {precision} matmul peak "
                f"({peak / 1e12:.3g} TFLOP/s)"
            )
        datasheet = peak_flops(hardware, precision)
        if datasheet:
            shares.append(f"{100 * median / datasheet:.0f}% of the {precision} datasheet peak")
        yield Row(
            "achieved",
            row.device,
            f"{row.benchmark}, {row.variant}",
            median / 1e12,
            "TFLOP/s",
            low / 1e12,
            high / 1e12,
            row.n,
            note=f"{row.note.split(';')[0]}; "
            + ("; ".join(shares) if shares else f"no {precision} peak measured (run 'peak')"),
            extra={
                "source": row.benchmark,
                "hardware": hardware,
                "precision": precision,
                "mfu": median / peak if peak else None,
                "datasheet_mfu": median / datasheet if datasheet else None,
            },
        )


# A paper run, for the GPU-time estimate: the VAE-GAN curriculum (PAPER_STAGE_BOUNDARIES at batch
# 16), the DCGAN's 25 epochs of CelebA's official train partition (configs/dcgan/celeba64.yaml),
# and the thesis's search (64 candidates x 1000 iterations) of its ~500 evaluated faces.
CELEBA_TRAIN_IMAGES = 162_770
DCGAN_PAPER_EPOCHS = 25
SEARCH_PAPER = {"candidates": 64, "iterations": 1000, "faces": 500}
ASSUMED_MFU = 0.2  # of the bf16 datasheet peak, until a GPU run measures one
ESTIMATE_GPUS = ("H100", "H200")


def paper_run_flops(counts: dict[tuple, float], sizes: Sizes) -> dict[str, tuple[float, str]]:
    """``path -> (FLOPs, what)`` of a paper run of each path whose FLOPs were counted at the
    papers' sizes; empty for other sizes (quick runs, a DCGAN sized by a config)."""
    from faceinpaint.bench.sizes import PAPER_DCGAN, PAPER_STAGE_BOUNDARIES, PAPER_VAEGAN
    from faceinpaint.bench.vaegan import PAPER_BATCH

    runs: dict[str, tuple[float, str]] = {}
    if sizes.vaegan == PAPER_VAEGAN and all(("vaegan", s) in counts for s in (1, 2, 3)):
        starts = (0, *PAPER_STAGE_BOUNDARIES[:2])
        updates = [end - start for start, end in zip(starts, PAPER_STAGE_BOUNDARIES, strict=True)]
        total = sum(
            n * counts[("vaegan", stage)] * PAPER_BATCH
            for n, stage in zip(updates, (1, 2, 3), strict=True)
        )
        runs["vaegan"] = (total, f"curriculum {'/'.join(map(str, updates))} updates, batch 16")
    if sizes.dcgan == PAPER_DCGAN and ("dcgan",) in counts:
        total = DCGAN_PAPER_EPOCHS * CELEBA_TRAIN_IMAGES * counts[("dcgan",)]
        runs["dcgan"] = (total, f"{DCGAN_PAPER_EPOCHS} epochs of {CELEBA_TRAIN_IMAGES} faces")
    search = counts.get(("search", "no landmark"))
    if sizes.dcgan == PAPER_DCGAN and sizes.candidates == SEARCH_PAPER["candidates"] and search:
        total = search * SEARCH_PAPER["iterations"] * SEARCH_PAPER["faces"]
        runs["search"] = (
            total,
            f"{SEARCH_PAPER['faces']} faces x {SEARCH_PAPER['candidates']} candidates x "
            f"{SEARCH_PAPER['iterations']} iterations, no landmark term",
        )
    return runs


def paper_run_rows(rows: list[Row], sizes: Sizes, device: str) -> Iterator[Row]:
    """Hours of a paper run of each path on one H100 / H200: its FLOPs (:func:`paper_run_flops`)
    over the bf16 datasheet peak times an MFU: the best one this run measured for the path on
    that GPU, else :data:`ASSUMED_MFU`, labelled as assumed."""
    measured: dict[tuple[str, str], float] = {}  # (path, hardware) -> best datasheet bf16 MFU
    paths = {"vaegan train": "vaegan", "dcgan train": "dcgan", "latent search": "search"}
    for row in rows:
        if row.benchmark == "achieved" and row.extra.get("precision") == "bf16":
            mfu = row.extra.get("datasheet_mfu")
            path = paths.get(row.extra["source"])
            if mfu and path:
                key = (path, row.extra.get("hardware", ""))
                measured[key] = max(measured.get(key, 0.0), mfu)
    for path, (total, what) in paper_run_flops(flop_counts(rows), sizes).items():
        for gpu in ESTIMATE_GPUS:
            peak = peak_flops(gpu, "bf16")
            found = [m for (p, hardware), m in measured.items() if p == path and gpu in hardware]
            mfu = max(found) if found else ASSUMED_MFU
            label = "measured in this run" if found else "assumed, not measured"
            yield Row(
                "paper run (estimate)",
                device,
                f"{path} on one {gpu}",
                total / (mfu * peak) / 3600,
                "hours",
                note=f"{what}: {total / 1e15:.3g} PFLOP (FLOP counts) at MFU {mfu:.2f} of the "
                f"bf16 datasheet peak ({peak / 1e12:g} TFLOP/s), {label}",
                extra={"path": path, "gpu": gpu, "pflop": total / 1e15, "mfu": mfu},
            )
