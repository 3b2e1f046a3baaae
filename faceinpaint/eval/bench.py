"""``faceinpaint bench``: throughput of both methods, each optimisation against its naive form.

Every row is a median over ``repeats`` timed runs after ``warmup`` untimed ones, with
``torch.cuda.synchronize()`` around each timed region on a GPU. Rows go to ``<out>/bench.jsonl``
(appended, one JSON object per row, each naming hardware, torch version, date, command and the
machine's load average) and ``<out>/bench.md`` (this run's table). CPU always; CUDA when present.

Models are the papers' sizes with random weights (speed does not depend on the weights; VGG and
the landmark network too). ``--quick`` shrinks everything so the whole run takes seconds.

Benchmarks (``--only`` picks some):
  ``vaegan``   training images/s per curriculum stage and batch size (fp32 vs bf16, eager vs compile)
  ``dcgan``    DCGAN training images/s at 64 px
  ``search``   latent search ms/iteration and images/s at 1000 iterations, for B images searched
               together, without / with the landmark network / with dlib in the loop
  ``landmarks`` ms per face: dlib on CPU vs the landmark network (forward, forward+backward)
  ``data``     FaceDataModule loader + on-device ``prepare_batch`` images/s
  ``flops``    FLOPs per training batch / search iteration (``FlopCounterMode``: matmuls and
               convolutions only), and achieved vs peak where a peak is known
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from faceinpaint.io import append_jsonl, write_text

Benchmark = Literal["vaegan", "dcgan", "search", "landmarks", "data", "flops"]
ALL_BENCHMARKS: tuple[Benchmark, ...] = ("flops", "vaegan", "dcgan", "search", "landmarks", "data")

# Dense peak FLOP/s by GPU name fragment (vendor datasheets, SXM parts); None where not listed.
PEAK_FLOPS = {
    "H200": {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12},
    "H100": {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12},
    "A100": {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
}


# ----------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_median(
    fn: Callable[[], object], device: torch.device, warmup: int = 1, repeats: int = 3
) -> tuple[float, list[float]]:
    """Median seconds of ``fn()`` over ``repeats`` timed calls after ``warmup`` untimed ones."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions ``fn()`` runs (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------------- rows
@dataclass
class Row:
    """One measurement; ``ratio`` = this value / the naive counterpart's (>1 = faster)."""

    benchmark: str
    device: str
    variant: str
    value: float | None
    unit: str
    ratio: float | None = None
    versus: str | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device, command: str) -> dict[str, Any]:
    """What each row names: hardware, torch version, date, the command, the load when run."""
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{cpu_name()} ({torch.get_num_threads()} threads)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "hardware": hardware,
        "torch": torch.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "load_1min": load,
        "cores": os.cpu_count(),
    }


def peak_flops(hardware: str, precision: str) -> float | None:
    for name, peaks in PEAK_FLOPS.items():
        if name in hardware:
            return peaks.get(precision)
    return None


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, one line per row (hardware, torch and date in each)."""
    header = [
        "| hardware | torch | date | benchmark | variant | value | unit | vs naive | note |",
        "|---|---|---|---|---|---:|---|---:|---|",
    ]
    lines = []
    for row in rows:
        value = "n/a" if row["value"] is None else f"{row['value']:.4g}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.3g}x vs {row['versus']}"
        note = row["note"]
        if row.get("load_1min") is not None and row["load_1min"] > 0.5 * (row.get("cores") or 1):
            note = f"{note}; machine loaded (load {row['load_1min']:.1f} on {row['cores']} cores)".lstrip(
                "; "
            )
        lines.append(
            f"| {row['hardware']} | {row['torch']} | {row['date']} | {row['benchmark']} | "
            f"{row['variant']} | {value} | {row['unit']} | {ratio} | {note} |"
        )
    return "\n".join(header + lines) + "\n"


# ----------------------------------------------------------------------------- sizes
@dataclass(frozen=True)
class Sizes:
    """Model and run sizes: the papers' (default) or ``quick`` ones."""

    vaegan: dict[str, Any]
    vaegan_batches: tuple[int, ...]
    dcgan: dict[str, Any]
    dcgan_batch: int
    candidates: int
    search_images: tuple[int, ...]
    search_iterations: int
    dlib_search_images: tuple[int, ...]
    landmark_faces: int
    data_batches: int


def paper_sizes(device: torch.device) -> Sizes:
    gpu = device.type == "cuda"
    return Sizes(
        vaegan=dict(
            image_size=128,
            latent_dim=512,
            base_channels=64,
            max_channels=512,
            num_layers=5,
            critic_base_channels=64,
            critic_max_channels=512,
            local_size=64,
        ),
        vaegan_batches=(16, 64) if gpu else (16, 32),
        dcgan=dict(latent_dim=100, ngf=64, ndf=64, image_size=64),
        dcgan_batch=128 if gpu else 64,
        candidates=64,
        search_images=(1, 4, 16),
        search_iterations=50 if gpu else 3,
        dlib_search_images=(1,),
        landmark_faces=64 if gpu else 16,
        data_batches=50 if gpu else 10,
    )


def quick_sizes() -> Sizes:
    return Sizes(
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
        dcgan=dict(latent_dim=8, ngf=4, ndf=4, image_size=32),
        dcgan_batch=4,
        candidates=4,
        search_images=(1, 2),
        search_iterations=2,
        dlib_search_images=(1,),
        landmark_faces=2,
        data_batches=2,
    )


# ----------------------------------------------------------------------------- helpers
def _batch(size: int, image_size: int, device: torch.device, seed: int = 0) -> dict[str, Tensor]:
    """A batch-contract batch of smooth random images with one centred square hole each."""
    from faceinpaint.data.masks import MaskSpec, make_masks

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(size, 3, 8, 8, generator=generator) * 2 - 1
    image = nn.functional.interpolate(coarse, size=image_size, mode="bilinear").clamp(-1, 1)
    index = torch.arange(size)
    mask = make_masks(MaskSpec(kind="center"), index, (image_size, image_size), 0)
    return {"image": image.to(device), "mask": mask.to(device), "index": index.to(device)}


class _SameBatch(torch.utils.data.Dataset):
    """``length`` copies of one CPU batch (DataLoader with ``batch_size=None``)."""

    def __init__(self, batch: dict[str, Tensor], length: int) -> None:
        self.batch = {k: v.cpu() for k, v in batch.items()}
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.batch


class _BatchTimer:
    """Lightning callback: seconds of each training batch, synchronised on a GPU."""

    def __init__(self, device: torch.device) -> None:
        import lightning.pytorch as pl

        outer = self

        class Callback(pl.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
                synchronize(device)
                outer._start = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                synchronize(device)
                outer.times.append(time.perf_counter() - outer._start)

        self.times: list[float] = []
        self._start = 0.0
        self.callback = Callback()


def _fit_timed(
    module: nn.Module,
    batch: dict[str, Tensor],
    device: torch.device,
    warmup: int,
    repeats: int,
    precision: str,
) -> float:
    """Median seconds per training batch of ``module`` under a Trainer, warm-up batches dropped."""
    import lightning.pytorch as pl

    timer = _BatchTimer(device)
    loader = torch.utils.data.DataLoader(_SameBatch(batch, warmup + repeats), batch_size=None)
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer.callback],
    )
    trainer.fit(module, train_dataloaders=loader)
    return statistics.median(timer.times[warmup:])


def _vaegan(sizes: Sizes, stage: int, compiled: bool) -> nn.Module:
    from faceinpaint.lit.vaegan import VAEGANInpainting

    far = 10**9
    boundaries = {1: (far, far, far), 2: (0, far, far), 3: (0, 0, far)}[stage]
    module = VAEGANInpainting(
        **sizes.vaegan,
        vgg_weights="random",
        landmark_checkpoint="random",
        stage_boundaries=boundaries,
        image_log_every_n_steps=0,
    )
    if compiled:
        for name in ("generator", "global_critic", "local_critic"):
            setattr(module, name, torch.compile(getattr(module, name)))
    return module


def _dcgan(sizes: Sizes, compiled: bool = False) -> nn.Module:
    from faceinpaint.lit.dcgan import DCGANInpainter

    module = DCGANInpainter(**sizes.dcgan, sample_every_n_batches=0)
    module.log_samples = lambda: None  # grid logging is not training
    if compiled:
        module.generator = torch.compile(module.generator)
        module.discriminator = torch.compile(module.discriminator)
    return module


def _variants(device: torch.device, compile_cpu: bool) -> list[tuple[str, str, bool, str]]:
    """``(name, precision, compiled, note)`` of each training variant measured on ``device``."""
    variants = [("fp32 eager", "32-true", False, "")]
    if device.type == "cuda":
        variants += [
            ("bf16 eager", "bf16-mixed", False, ""),
            ("bf16 compile", "bf16-mixed", True, ""),
        ]
    elif compile_cpu:
        variants.append(("fp32 compile", "32-true", True, ""))
    return variants


def _with_ratios(rows: list[Row], naive: str) -> list[Row]:
    """Fill ``ratio`` of each row against the row of the same key whose variant is ``naive``."""
    base = {(r.benchmark, r.extra.get("key")): r for r in rows if r.variant == naive}
    for row in rows:
        ref = base.get((row.benchmark, row.extra.get("key")))
        if ref is not None and row is not ref and row.value and ref.value:
            row.ratio, row.versus = row.value / ref.value, ref.variant
    return rows


# ----------------------------------------------------------------------------- benchmarks
def bench_vaegan(
    device: torch.device, sizes: Sizes, warmup: int, repeats: int, compile_cpu: bool
) -> list[Row]:
    rows = []
    for stage in (1, 2, 3):
        for batch_size in sizes.vaegan_batches:
            batch = _batch(batch_size, sizes.vaegan["image_size"], device)
            for variant, precision, compiled, note in _variants(device, compile_cpu):
                seconds = _fit_timed(
                    _vaegan(sizes, stage, compiled), batch, device, warmup, repeats, precision
                )
                rows.append(
                    Row(
                        "vaegan train",
                        device.type,
                        variant,
                        batch_size / seconds,
                        "images/s",
                        note=f"stage {stage}, batch {batch_size}, {sizes.vaegan['image_size']} px; "
                        f"{1 / seconds:.3g} generator updates/s {note}".strip(),
                        extra={
                            "key": (stage, batch_size),
                            "stage": stage,
                            "batch": batch_size,
                            "seconds_per_batch": seconds,
                        },
                    )
                )
    if device.type == "cpu" and not compile_cpu:
        rows.append(
            Row(
                "vaegan train",
                "cpu",
                "compile",
                None,
                "images/s",
                note="torch.compile skipped on CPU (minutes to compile; --compile_cpu)",
            )
        )
    return _with_ratios(rows, "fp32 eager")


def bench_dcgan(
    device: torch.device, sizes: Sizes, warmup: int, repeats: int, compile_cpu: bool
) -> list[Row]:
    rows = []
    batch = _batch(sizes.dcgan_batch, sizes.dcgan["image_size"], device)
    for variant, precision, compiled, _ in _variants(device, compile_cpu):
        seconds = _fit_timed(_dcgan(sizes, compiled), batch, device, warmup, repeats, precision)
        rows.append(
            Row(
                "dcgan train",
                device.type,
                variant,
                sizes.dcgan_batch / seconds,
                "images/s",
                note=f"batch {sizes.dcgan_batch}, {sizes.dcgan['image_size']} px",
                extra={"key": sizes.dcgan_batch, "seconds_per_batch": seconds},
            )
        )
    return _with_ratios(rows, "fp32 eager")


class _EveryIteration(nn.Module):
    """The thesis's way: a non-differentiable landmark term evaluated at every search iteration."""

    differentiable = True

    def __init__(self, term: nn.Module) -> None:
        super().__init__()
        self.term = term

    def targets(self, damaged: Tensor, mask: Tensor) -> Tensor:
        return self.term.targets(damaged, mask)

    def forward(self, generated: Tensor, targets: Tensor) -> Tensor:
        return self.term(generated.detach(), targets)


def _landmark_terms(sizes: Sizes, with_dlib: bool) -> dict[str, tuple[nn.Module | None, str]]:
    from faceinpaint.landmarks.network import LandmarkNet
    from faceinpaint.losses.latent_search import NetworkLandmarkTerm

    terms: dict[str, tuple[nn.Module | None, str]] = {
        "no landmark": (None, ""),
        "landmark network": (NetworkLandmarkTerm(LandmarkNet()), ""),
    }
    if with_dlib:
        from faceinpaint.landmarks.teacher import CELEBA_CROP_BOX, DlibTeacher
        from faceinpaint.losses.latent_search import DlibLandmarkTerm

        teacher = DlibTeacher(fallback_box=CELEBA_CROP_BOX)  # the predictor runs on every candidate
        terms["dlib every iteration"] = (
            _EveryIteration(DlibLandmarkTerm(teacher)),
            "thesis: dlib on every candidate each iteration (CPU)",
        )
    return terms


def bench_search(
    device: torch.device, sizes: Sizes, warmup: int, repeats: int, with_dlib: bool
) -> list[Row]:
    """ms/iteration from the difference of searches of K+1 and 1 iterations; images/s at 1000."""
    from faceinpaint.lit.search import LatentSearch
    from faceinpaint.models.dcgan import Discriminator, Generator

    generator = Generator(sizes.dcgan["latent_dim"], sizes.dcgan["ngf"], sizes.dcgan["image_size"])
    discriminator = Discriminator(sizes.dcgan["ndf"], sizes.dcgan["image_size"])
    generator.to(device)
    discriminator.to(device)
    k = sizes.search_iterations
    rows = []
    for label, (term, note) in _landmark_terms(sizes, with_dlib).items():
        images_list = sizes.dlib_search_images if "dlib" in label else sizes.search_images
        for images in images_list:
            batch = _batch(images, sizes.dcgan["image_size"], device)
            timings = {}
            for iterations in (1, k + 1):
                search = LatentSearch(
                    generator,
                    discriminator,
                    num_candidates=sizes.candidates,
                    iterations=iterations,
                    landmark_weight=1.0 if term is not None else 0.0,
                    landmark_term=term.to(device) if term is not None else None,
                )
                timings[iterations], _ = time_median(
                    lambda s=search, b=batch: s(b["image"], b["mask"], b["index"]),
                    device,
                    warmup,
                    repeats if "dlib" not in label else 1,
                )
            per_iteration = max(timings[k + 1] - timings[1], 1e-9) / k
            at_1000 = timings[1] + 999 * per_iteration
            rows.append(
                Row(
                    "latent search",
                    device.type,
                    f"{label}, B={images}",
                    images / at_1000,
                    "images/s @1000 it",
                    note=(
                        f"{sizes.candidates} candidates; {per_iteration * 1e3:.3g} ms/iteration "
                        f"measured over {k} iterations, projected to 1000. {note}"
                    ).strip(),
                    extra={
                        "key": (label, "per image"),
                        "images": images,
                        "landmark": label,
                        "ms_per_iteration": per_iteration * 1e3,
                        "iterations_timed": k,
                    },
                )
            )
    # batched vs one image at a time (same landmark setting), and network vs dlib at B = 1
    for row in rows:
        one = next(
            (
                r
                for r in rows
                if r.extra["landmark"] == row.extra["landmark"] and r.extra["images"] == 1
            ),
            None,
        )
        if one is not None and row is not one:
            row.ratio, row.versus = row.value / one.value, one.variant
        if row.extra["landmark"] == "landmark network" and row.extra["images"] == 1:
            dlib = next((r for r in rows if r.extra["landmark"] == "dlib every iteration"), None)
            if dlib is not None:
                row.ratio, row.versus = row.value / dlib.value, dlib.variant
    return rows


def _faces(count: int, image_size: int, data_root: str | None) -> tuple[Tensor, str]:
    """Real CelebA crops when ``data_root`` is given, else embedded faces; (N,3,S,S) in [-1,1]."""
    from faceinpaint.data.datamodule import FaceDataModule

    if data_root is not None:
        data = FaceDataModule(
            root=data_root,
            layout="folder",
            splits={"val": "8001-9000"},
            image_size=image_size,
            num_workers=0,
        )
        split, source = "val", "celeba-half"
    else:
        data = FaceDataModule(
            image_size=image_size, num_workers=0, synthetic_size=max(10 * count, 80)
        )
        split, source = "test", "embedded faces"
    images = torch.from_numpy(data.cached_split(split).images[:count].copy())  # (N,S,S,3) uint8
    return images.permute(0, 3, 1, 2).float().div(127.5).sub(1.0), source


def bench_landmarks(
    device: torch.device,
    sizes: Sizes,
    warmup: int,
    repeats: int,
    data_root: str | None,
    with_dlib: bool,
) -> list[Row]:
    from faceinpaint.landmarks.network import LandmarkNet

    rows = []
    for image_size in (64, 128):
        faces, source = _faces(sizes.landmark_faces, image_size, data_root)
        n = faces.shape[0]
        key = image_size
        dlib_ms = None
        if with_dlib:
            from faceinpaint.landmarks.teacher import DlibTeacher

            teacher = DlibTeacher()
            cpu = torch.device("cpu")
            seconds, _ = time_median(lambda t=teacher, x=faces: t(x), cpu, 1, repeats)
            dlib_ms = seconds / n * 1e3
            _, found = teacher(faces)
            if device.type == "cpu":
                rows.append(
                    Row(
                        "landmarks per face",
                        "cpu",
                        "dlib (HOG detect + predictor)",
                        dlib_ms,
                        "ms/face",
                        note=f"{image_size} px {source}, found {int(found.sum())}/{n}",
                        extra={"key": key},
                    )
                )
        net = LandmarkNet().eval().to(device)
        x = faces.to(device)

        def forward(net=net, x=x):
            with torch.no_grad():
                net(x)

        def forward_backward(net=net, x=x):
            y = x.clone().requires_grad_(True)
            _, points = net(y)
            points.sum().backward()

        for label, fn in (
            ("network forward", forward),
            ("network forward+backward", forward_backward),
        ):
            seconds, _ = time_median(fn, device, warmup, repeats)
            ms = seconds / n * 1e3
            rows.append(
                Row(
                    "landmarks per face",
                    device.type,
                    label,
                    ms,
                    "ms/face",
                    ratio=dlib_ms / ms if dlib_ms else None,
                    versus="dlib on CPU (speed-up)" if dlib_ms else None,
                    note=f"{image_size} px, batch {n}",
                    extra={"key": key},
                )
            )
    return rows


def bench_data(
    device: torch.device,
    sizes: Sizes,
    data_root: str | None,
    num_workers: int,
    consumed: dict[int, float],
) -> list[Row]:
    """Loader + on-device ``prepare_batch`` images/s against training's images/s (``consumed``)."""
    from faceinpaint.data.datamodule import FaceDataModule
    from faceinpaint.data.masks import MaskSpec

    rows = []
    settings = (
        (sizes.vaegan["image_size"], sizes.vaegan_batches[0], "vaegan"),
        (sizes.dcgan["image_size"], sizes.dcgan_batch, "dcgan"),
    )
    for image_size, batch_size, method in settings:
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
            source = "celeba-half"
        else:
            data = FaceDataModule(
                synthetic_size=max(2 * batch_size * sizes.data_batches, 80), **options
            )
            source = "embedded faces"
        data.setup("fit")
        loader = data.train_dataloader()

        def run(loader=loader, data=data, count=sizes.data_batches):
            seen = 0
            while seen < count:
                for batch in loader:
                    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                    data.prepare_batch(batch, "train")
                    seen += 1
                    if seen == count:
                        break

        seconds, _ = time_median(run, device, 1, 3)
        rate = sizes.data_batches * batch_size / seconds
        need = consumed.get(image_size)
        rows.append(
            Row(
                "data pipeline",
                device.type,
                f"{method} loader + prepare_batch",
                rate,
                "images/s",
                ratio=rate / need if need else None,
                versus="training consumption" if need else None,
                note=f"{source}, {image_size} px, batch {batch_size}, "
                f"{num_workers} workers (target: >= 10x training)",
            )
        )
    return rows


def bench_flops(device: torch.device, sizes: Sizes) -> list[Row]:
    """FLOPs per VAE-GAN batch per stage, DCGAN batch, and search iteration (per candidate)."""
    from faceinpaint.batch import composite, fill_hole
    from faceinpaint.lit.search import LatentSearch
    from faceinpaint.models.vaegan import hole_windows

    rows = []
    batch_size = sizes.vaegan_batches[0]
    batch = _batch(batch_size, sizes.vaegan["image_size"], device)
    for stage in (1, 2, 3):
        module = _vaegan(sizes, stage, compiled=False).to(device)
        image, mask = batch["image"], batch["mask"]

        def generator_step(module=module, stage=stage, image=image, mask=mask):
            network_input = fill_hole(image, mask, "noise")
            windows = hole_windows(mask, module.hparams.local_size)
            output, mu, logvar = module.generator(network_input)
            result = composite(output, image, mask)
            total, _ = module.generator_loss(stage, image, output, result, mu, logvar, windows)
            total.backward()

        with torch.no_grad():
            fake = composite(module.generator(fill_hole(image, mask, "noise"))[0], image, mask)

        def critic_step(module=module, image=image, mask=mask, fake=fake):
            windows = hole_windows(mask, module.hparams.local_size)
            total, _ = module.critic_losses(image, fake, windows)
            total.backward()

        flops = count_flops(generator_step)
        if stage >= 2:
            flops += module.hparams.n_critic * count_flops(critic_step)
        rows.append(
            Row(
                "flops",
                device.type,
                f"vaegan stage {stage} batch",
                flops / 1e9,
                "GFLOP",
                note=f"batch {batch_size}: generator step"
                + (f" + {module.hparams.n_critic} critic steps" if stage >= 2 else ""),
                extra={"key": ("vaegan", stage), "flops": flops, "batch": batch_size},
            )
        )
    module = _dcgan(sizes).to(device)
    real = _batch(sizes.dcgan_batch, sizes.dcgan["image_size"], device)["image"]

    def dcgan_step(module=module):
        fake = module.generator(torch.rand(real.shape[0], sizes.dcgan["latent_dim"], device=device))
        d_loss, _ = module.discriminator_loss(real, fake)
        d_loss.backward()
        module.generator_loss(fake).backward()

    flops = count_flops(dcgan_step)
    rows.append(
        Row(
            "flops",
            device.type,
            "dcgan batch",
            flops / 1e9,
            "GFLOP",
            note=f"batch {sizes.dcgan_batch}",
            extra={"key": ("dcgan",), "flops": flops, "batch": sizes.dcgan_batch},
        )
    )
    for label, (term, _) in _landmark_terms(sizes, with_dlib=False).items():
        search = LatentSearch(
            module.generator,
            module.discriminator,
            num_candidates=sizes.candidates,
            iterations=1,
            landmark_weight=1.0 if term is not None else 0.0,
            landmark_term=term.to(device) if term is not None else None,
        )
        one = _batch(1, sizes.dcgan["image_size"], device)
        search_flops = count_flops(lambda s=search, b=one: s(b["image"], b["mask"], b["index"]))
        rows.append(
            Row(
                "flops",
                device.type,
                f"search iteration, {label}",
                search_flops / 1e9,
                "GFLOP",
                note=f"1 image x {sizes.candidates} candidates; 1 iteration + "
                "final evaluation (upper bound)",
                extra={"key": ("search", label), "flops": search_flops},
            )
        )
    return rows


def achieved_rows(rows: list[Row], hardware: str) -> list[Row]:
    """Achieved FLOP/s of the training rows from their FLOP counts, against the known peak."""
    flops = {r.extra["key"]: r.extra for r in rows if r.benchmark == "flops"}
    out = []
    for row in rows:
        if row.benchmark == "vaegan train" and row.value:
            stage, batch = row.extra["stage"], row.extra["batch"]
            ref = flops.get(("vaegan", stage))
            if ref is None:
                continue
            per_batch = ref["flops"] * batch / ref["batch"]
        elif row.benchmark == "dcgan train" and row.value:
            ref = flops.get(("dcgan",))
            if ref is None:
                continue
            per_batch = ref["flops"] * row.extra["key"] / ref["batch"]
        else:
            continue
        achieved = per_batch / row.extra["seconds_per_batch"]
        precision = "bf16" if "bf16" in row.variant else "fp32"
        peak = peak_flops(hardware, precision)
        out.append(
            Row(
                "achieved",
                row.device,
                f"{row.benchmark}, {row.variant}",
                achieved / 1e12,
                "TFLOP/s",
                note=(
                    row.note.split(";")[0]
                    + "; "
                    + (
                        f"{100 * achieved / peak:.2g}% of {precision} peak {peak / 1e12:g}"
                        if peak
                        else "peak unknown"
                    )
                ),
            )
        )
    return out


# ----------------------------------------------------------------------------- entry point
def bench(
    out: str = "outputs/bench",
    quick: bool = False,
    only: list[Benchmark] | None = None,
    devices: list[str] | None = None,
    warmup: int = 1,
    repeats: int = 3,
    data_root: str | None = None,
    num_workers: int = 2,
    dlib: bool = True,
    compile_cpu: bool = False,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Benchmark both methods on CPU (always) and CUDA (when present); rows to JSON lines + markdown.

    Args:
        out: folder of ``bench.jsonl`` (appended) and ``bench.md`` (this run).
        quick: tiny models and runs (seconds; for tests), not the papers' sizes.
        only: benchmarks to run (default all): vaegan, dcgan, search, landmarks, data, flops.
        devices: e.g. ``[cpu]``; default cpu, and cuda when available.
        warmup: untimed runs before timing.
        repeats: timed runs; each row is their median.
        data_root: a folder of faces (e.g. ../shared/data/celeba-half) for the data and
            landmark rows; default the embedded faces.
        num_workers: loader processes of the data row.
        dlib: include the dlib rows (dlib per face; dlib in the search loop).
        compile_cpu: also time torch.compile on CPU (slow to compile; GPU always does).
        threads: torch CPU threads (default: torch's choice).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    chosen = tuple(only) if only else ALL_BENCHMARKS
    unknown = set(chosen) - set(ALL_BENCHMARKS)
    if unknown:
        raise ValueError(f"unknown benchmarks {sorted(unknown)}; choose from {ALL_BENCHMARKS}")
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    command = (
        "faceinpaint bench " + " ".join(sys.argv[2:])
        if sys.argv[1:2] == ["bench"]
        else (f"bench(quick={quick}, only={list(chosen)})")
    )
    all_rows: list[dict[str, Any]] = []
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for but CUDA is not available")
        sizes = quick_sizes() if quick else paper_sizes(device)
        env = environment(device, command)
        rows: list[Row] = []
        if "flops" in chosen:
            rows += bench_flops(device, sizes)
        if "vaegan" in chosen:
            rows += bench_vaegan(device, sizes, warmup, repeats, compile_cpu)
        if "dcgan" in chosen:
            rows += bench_dcgan(device, sizes, warmup, repeats, compile_cpu)
        rows += achieved_rows(rows, env["hardware"])
        if "search" in chosen:
            rows += bench_search(device, sizes, warmup, repeats, dlib and device.type == "cpu")
        if "landmarks" in chosen:
            rows += bench_landmarks(device, sizes, warmup, repeats, data_root, dlib)
        if "data" in chosen:
            consumed = {}
            for row in rows:
                if row.benchmark in ("vaegan train", "dcgan train") and row.value:
                    size = (
                        sizes.vaegan["image_size"]
                        if row.benchmark == "vaegan train"
                        else sizes.dcgan["image_size"]
                    )
                    consumed[size] = max(consumed.get(size, 0.0), row.value)
            rows += bench_data(device, sizes, data_root, num_workers, consumed)
        if device.type == "cpu":
            rows.append(Row("bf16 autocast", "cpu", "bf16 vs fp32", None, "", note="n/a on CPU"))
        for row in rows:
            record = {**env, **asdict(row)}
            record["extra"] = {k: v for k, v in record["extra"].items() if k != "key"}
            all_rows.append(record)
    _write(Path(out), all_rows)
    return all_rows


def _write(out: Path, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    append_jsonl([json.loads(json.dumps(row, default=str)) for row in rows], out / "bench.jsonl")
    title = f"# faceinpaint bench\n\nCommand: `{rows[0]['command']}`\n\n" if rows else ""
    write_text(title + markdown_table(rows), out / "bench.md")
