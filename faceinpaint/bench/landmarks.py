"""Landmarks per face: dlib on the CPU against the landmark network (forward; forward+backward)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import Sizes
from faceinpaint.bench.timing import Spread, interleave, paired_ratios
from faceinpaint.device import bf16_autocast, native_bf16

DLIB = "dlib (HOG detect + predictor)"
BF16 = ", bf16"  # the label suffix of a bf16-autocast variant


def faces(count: int, image_size: int, data_root: str | None) -> tuple[Tensor, str]:
    """Real CelebA crops (val) when ``data_root`` is given, else embedded faces; (N,3,S,S) in [-1,1]."""
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
) -> Iterator[Row]:
    """ms/face of each way at 64 and 128 px, interleaved (the network also under bf16 autocast
    where the device runs bf16 natively); bf16's speed-up over fp32 and the network's over dlib."""
    from faceinpaint.landmarks.network import LandmarkNet

    bf16 = native_bf16(device)
    for image_size in (64, 128):
        images, source = faces(sizes.landmark_faces, image_size, data_root)
        n = images.shape[0]
        net = LandmarkNet().eval().to(device)
        x = images.to(device)

        def forward(net=net, x=x, bf16=False) -> None:
            with torch.no_grad(), bf16_autocast(x.device, bf16):
                net(x)

        def forward_backward(net=net, x=x, bf16=False) -> None:
            y = x.clone().requires_grad_(True)
            with bf16_autocast(x.device, bf16):
                _, points = net(y)
            points.sum().backward()

        fns: dict[str, Callable[[], object]] = {
            "network forward": forward,
            "network forward+backward": forward_backward,
        }
        if bf16:
            fns[f"network forward{BF16}"] = lambda f=forward: f(bf16=True)
            fns[f"network forward+backward{BF16}"] = lambda f=forward_backward: f(bf16=True)
        found = None
        if with_dlib:
            from faceinpaint.landmarks.teacher import DlibTeacher

            teacher = DlibTeacher()
            fns[DLIB] = lambda t=teacher, x=images: t(x)
            _, found = teacher(images)
        times = interleave(fns, device, warmup, repeats)
        for label in fns:
            note = f"{image_size} px {source}, batch {n}"
            if label == DLIB:
                note += f", found {int(found.sum())}/{n}, on the CPU"
            yield Row.measured(
                "landmarks per face",
                "cpu" if label == DLIB else device.type,
                label,
                Spread.of(times[label]).map(lambda s, n=n: s / n * 1e3),
                "ms/face",
                note=note,
            )
        for label in ("network forward", "network forward+backward") if bf16 else ():
            yield Row.measured(
                "landmarks speed-up",
                device.type,
                f"{label}{BF16} vs fp32",
                paired_ratios(times[label], times[label + BF16]),
                "x",
                note=f"{image_size} px, batch {n}; bf16 autocast (points in fp32, as the "
                "search's bf16 runs it); >1 = bf16 is faster; paired by round",
            )
        if with_dlib:
            for label in ("network forward", "network forward+backward"):
                yield Row.measured(
                    "landmarks speed-up",
                    device.type,
                    f"{label} vs dlib",
                    paired_ratios(times[DLIB], times[label]),
                    "x",
                    note=f"{image_size} px; >1 = the network is faster; paired by round",
                )
