"""The data pipeline: loader + on-device ``prepare_batch`` images/s against training's consumption."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import Sizes
from faceinpaint.bench.timing import Spread, interleave


def bench_data(
    device: torch.device,
    sizes: Sizes,
    warmup: int,
    repeats: int,
    data_root: str | None,
    num_workers: int,
    consumed: dict[str, float],
) -> Iterator[Row]:
    """images/s of the VAE-GAN's (128 px) and the DCGAN's (64 px) training loaders, interleaved;
    ``consumed`` maps ``vaegan`` / ``dcgan`` to the fastest training images/s of this run."""
    from faceinpaint.data.datamodule import FaceDataModule
    from faceinpaint.data.masks import MaskSpec

    settings = {
        "vaegan": (sizes.vaegan["image_size"], sizes.vaegan_batches[0]),
        "dcgan": (sizes.dcgan["image_size"], sizes.dcgan_batch),
    }
    fns = {}
    sources = {}
    for method, (image_size, batch_size) in settings.items():
        options = dict(
            image_size=image_size,
            batch_size=batch_size,
            num_workers=num_workers,
            train_mask=MaskSpec(kind="random_square"),
        )
        if data_root is not None:
            data = FaceDataModule(
                root=data_root,
                layout="folder",
                splits={"train": "1-8000", "val": "8001-9000"},
                **options,
            )
            sources[method] = "celeba-half"
        else:
            data = FaceDataModule(
                synthetic_size=max(2 * batch_size * sizes.data_batches, 80), **options
            )
            sources[method] = "embedded faces"
        data.setup("fit")
        loader = data.train_dataloader()

        def run(loader=loader, data=data, count=sizes.data_batches) -> None:
            seen = 0
            while seen < count:
                for batch in loader:
                    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                    data.prepare_batch(batch, "train")
                    seen += 1
                    if seen == count:
                        break

        fns[method] = run
    times = interleave(fns, device, warmup, repeats)
    for method, (image_size, batch_size) in settings.items():
        rate = Spread.of(times[method]).map(lambda s, b=batch_size: sizes.data_batches * b / s)
        need = consumed.get(method)
        headroom = (
            f"; {rate.median / need:.3g}x the {need:.3g} images/s training consumed" if need else ""
        )
        yield Row.measured(
            "data pipeline",
            device.type,
            f"{method} loader + prepare_batch",
            rate,
            "images/s",
            note=f"{sources[method]}, {image_size} px, batch {batch_size}, {num_workers} workers "
            f"(target: >= 10x training{headroom}; training timed in another benchmark, not paired)",
        )
