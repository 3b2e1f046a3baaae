"""Choosing the device, waiting for it, and how the CPU allocator keeps memory."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys

import torch


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1``... as a ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls and convolutions natively (oneDNN sees AVX512-BF16 or
    AMX); without it bf16 is emulated and slower than fp32. Asked once per process: the search
    consults it at every iteration."""
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 natively: a CUDA GPU that supports it, a CPU with
    :func:`cpu_has_bf16`."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def bf16_autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """bf16 autocast on ``device``'s type, or a no-op context when not ``enabled``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


# glibc's mallopt parameters (malloc.h) and their defaults
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
KEPT_TRIM_THRESHOLD = 2**31 - 1  # bytes of free heap top kept before returning any (2 GiB)
MALLOC_ENV = "FACEINPAINT_MALLOC"  # "system": leave glibc's malloc as it is
_kept = False  # the last keep_freed_memory that applied


def _glibc() -> ctypes.CDLL | None:
    if not malloc_tunable():
        return None
    return ctypes.CDLL("libc.so.6")


def malloc_tunable() -> bool:
    """Whether :func:`keep_freed_memory` can act here (Linux with glibc)."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_freed_memory(keep: bool = True) -> bool:
    """Let glibc's malloc keep freed CPU memory for the next allocation (``keep``), or restore
    its defaults; True when it applied (Linux with glibc only).

    By default glibc serves every block above its mmap threshold (128 KiB, rising to at most
    32 MiB) with a fresh ``mmap`` and unmaps it on ``free``: a CPU tensor that size is new pages,
    zero-filled by the kernel on first touch, every time. A batched latent search at the
    papers' width (16 faces x 64 candidates) allocates activations of hundreds of MB at each
    step, and 40 % of its wall time went to the kernel (docs/RESULTS.md, "Batching"). Kept:
    no ``mmap`` for large blocks and a 2 GiB trim threshold, so freed blocks stay in the heap and
    the next step reuses them, as PyTorch's caching allocator does on a GPU. The cost: a
    process keeps up to its peak CPU memory until it exits. The ``faceinpaint`` command calls
    this at start; ``FACEINPAINT_MALLOC=system`` in the environment opts out.
    """
    global _kept
    libc = _glibc()
    if libc is None:
        return False
    _kept = keep
    mmap_max, trim = (
        (0, KEPT_TRIM_THRESHOLD) if keep else (_DEFAULT_MMAP_MAX, _DEFAULT_TRIM_THRESHOLD)
    )
    return bool(libc.mallopt(_M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))


def malloc_setting() -> str:
    """How CPU memory is allocated in this process, for benchmark rows: ``freed memory kept``,
    ``glibc defaults`` or ``not glibc``."""
    if not malloc_tunable():
        return "not glibc"
    return "freed memory kept" if _kept else "glibc defaults"


def configure_malloc() -> bool:
    """:func:`keep_freed_memory` unless ``FACEINPAINT_MALLOC=system``; a value other than
    ``system`` or ``kept`` is a one-line ``ValueError``."""
    choice = os.environ.get(MALLOC_ENV, "kept")
    if choice not in ("kept", "system"):
        raise ValueError(f"{MALLOC_ENV} must be 'kept' or 'system', got {choice!r}")
    return choice == "kept" and keep_freed_memory()
