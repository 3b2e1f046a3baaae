"""Landmarks per second: the dlib teacher on CPU against ``LandmarkNet`` on a device."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from faceinpaint.landmarks.network import LandmarkNet
from faceinpaint.landmarks.teacher import DlibTeacher


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dlib_faces_per_second(teacher: DlibTeacher, image: Tensor) -> float:
    """Faces per second through detection + shape prediction of ``image`` ``(B,3,H,W)`` [-1,1]."""
    start = time.perf_counter()
    teacher(image.cpu())
    return image.shape[0] / (time.perf_counter() - start)


@torch.no_grad()
def net_faces_per_second(
    net: LandmarkNet,
    image: Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    repeats: int = 5,
) -> float:
    """Faces per second of ``net`` (eval mode) on ``device``, in batches of ``batch_size``; best of ``repeats``."""
    device = torch.device(device)
    net = net.eval().to(device)
    batches = [image[i : i + batch_size].to(device) for i in range(0, image.shape[0], batch_size)]
    net(batches[0])  # warm-up (cuDNN autotune, allocator)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for batch in batches:
            net(batch)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return image.shape[0] / best


def landmark_speed(
    net: LandmarkNet,
    teacher: DlibTeacher,
    image: Tensor,
    devices: tuple[str, ...] = ("cpu",),
    batch_size: int = 64,
) -> dict[str, float]:
    """``{"dlib_cpu": faces/s, "net_<device>": faces/s, ...}`` on the same faces (68 landmarks each)."""
    speeds = {"dlib_cpu": dlib_faces_per_second(teacher, image)}
    for device in devices:
        speeds[f"net_{device}"] = net_faces_per_second(net, image, device, batch_size)
    return speeds
