"""Landmarks per face: dlib on the CPU against the landmark network (forward; forward+backward)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import Sizes
from faceinpaint.bench.timing import Spread, interleave, paired_ratios

DLIB = "dlib (HOG detect + predictor)"


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
    """ms/face of each way at 64 and 128 px, interleaved; the network's speed-up over dlib."""
    from faceinpaint.landmarks.network import LandmarkNet

    for image_size in (64, 128):
        images, source = faces(sizes.landmark_faces, image_size, data_root)
        n = images.shape[0]
        net = LandmarkNet().eval().to(device)
        x = images.to(device)

        def forward(net=net, x=x) -> None:
            with torch.no_grad():
                net(x)

        def forward_backward(net=net, x=x) -> None:
            y = x.clone().requires_grad_(True)
            _, points = net(y)
            points.sum().backward()

        fns: dict[str, Callable[[], object]] = {
            "network forward": forward,
            "network forward+backward": forward_backward,
        }
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
