"""FLOPs of a training batch and of a search iteration (``FlopCounterMode``: matmuls and
convolutions only), and the achieved FLOP/s of the training rows against a known peak."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from faceinpaint.bench.dcgan import build_dcgan
from faceinpaint.bench.rows import Row, peak_flops
from faceinpaint.bench.search import landmark_terms
from faceinpaint.bench.sizes import Sizes, synthetic_batch
from faceinpaint.bench.vaegan import build_vaegan


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions ``fn()`` runs (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def bench_flops(device: torch.device, sizes: Sizes) -> Iterator[Row]:
    """GFLOP per image of a VAE-GAN batch per stage and of a DCGAN batch (counted at
    ``sizes.flops_batch``; linear in the batch), and per search iteration of 1 image x N candidates."""
    from faceinpaint.batch import composite, fill_hole
    from faceinpaint.latent_search import LatentSearch
    from faceinpaint.models.vaegan import hole_windows

    counted = sizes.flops_batch
    batch = synthetic_batch(counted, sizes.vaegan["image_size"], device)
    image, mask = batch["image"], batch["mask"]
    for stage in (1, 2, 3):
        module = build_vaegan(sizes, stage, compiled=False).to(device)

        def generator_step(module=module, stage=stage) -> None:
            network_input = fill_hole(image, mask, "noise")
            windows = hole_windows(mask, module.hparams.local_size)
            output, mu, logvar = module.generator(network_input)
            result = composite(output, image, mask)
            total, _ = module.generator_loss(stage, image, output, result, mu, logvar, windows)
            total.backward()

        with torch.no_grad():
            fake = composite(module.generator(fill_hole(image, mask, "noise"))[0], image, mask)

        def critic_step(module=module, fake=fake) -> None:
            windows = hole_windows(mask, module.hparams.local_size)
            total, _ = module.critic_losses(image, fake, windows)
            total.backward()

        flops = count_flops(generator_step)
        if stage >= 2:
            flops += module.hparams.n_critic * count_flops(critic_step)
        yield Row(
            "flops",
            device.type,
            f"vaegan stage {stage}, per image",
            flops / counted / 1e9,
            "GFLOP",
            note="generator update"
            + (f" + {module.hparams.n_critic} critic updates" if stage >= 2 else "")
            + f"; counted at batch {counted}",
            extra={"key": ("vaegan", stage), "flops_per_image": flops / counted},
        )
    module = build_dcgan(sizes).to(device)
    real = synthetic_batch(counted, sizes.dcgan["image_size"], device)["image"]

    def dcgan_step() -> None:
        fake = module.generator(torch.rand(counted, sizes.dcgan["latent_dim"], device=device))
        d_loss, _ = module.discriminator_loss(real, fake)
        d_loss.backward()
        module.generator_loss(fake).backward()

    flops = count_flops(dcgan_step)
    yield Row(
        "flops",
        device.type,
        "dcgan, per image",
        flops / counted / 1e9,
        "GFLOP",
        note=f"discriminator + generator update; counted at batch {counted}",
        extra={"key": ("dcgan",), "flops_per_image": flops / counted},
    )
    one = synthetic_batch(1, sizes.dcgan["image_size"], device)
    for label, term in landmark_terms(with_dlib=False).items():
        term = term.to(device) if term is not None else None
        counts = []
        for iterations in (0, 1):
            search = LatentSearch(
                module.generator,
                module.discriminator,
                num_candidates=sizes.candidates,
                iterations=iterations,
                landmark_weight=1.0 if term is not None else 0.0,
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


def achieved_rows(rows: list[Row], hardware: str) -> Iterator[Row]:
    """Achieved TFLOP/s of the training rows from the FLOP rows, against the known peak."""
    flops = {
        r.extra["key"]: r.extra["flops_per_image"]
        for r in rows
        if r.benchmark == "flops" and "flops_per_image" in r.extra
    }
    for row in rows:
        if row.value is None:
            continue
        if row.benchmark == "vaegan train":
            per_image = flops.get(("vaegan", row.extra["stage"]))
        elif row.benchmark == "dcgan train":
            per_image = flops.get(("dcgan",))
        else:
            continue
        if per_image is None:
            continue
        achieved = per_image * row.value  # FLOP per image x images/s
        precision = "bf16" if "bf16" in row.variant else "fp32"
        peak = peak_flops(hardware, precision)
        share = (
            f"{100 * achieved / peak:.2g}% of {precision} peak {peak / 1e12:g}"
            if peak
            else "peak unknown"
        )
        yield Row(
            "achieved",
            row.device,
            f"{row.benchmark}, {row.variant}",
            achieved / 1e12,
            "TFLOP/s",
            None if row.low is None else per_image * row.low / 1e12,
            None if row.high is None else per_image * row.high / 1e12,
            row.n,
            note=f"{row.note.split(';')[0]}; {share}",
        )
