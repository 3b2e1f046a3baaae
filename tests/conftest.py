"""Shared fixtures: an isolated cache, the optional celeba-half folder, and no network logging."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CELEBA_HALF = REPO.parent / "shared" / "data" / "celeba-half"

os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test writes decoded splits under a temporary folder, never the user's cache."""
    path = tmp_path_factory.mktemp("faceinpaint-cache")
    old = os.environ.get("FACEINPAINT_CACHE")
    os.environ["FACEINPAINT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FACEINPAINT_CACHE", None)
    else:
        os.environ["FACEINPAINT_CACHE"] = old


@pytest.fixture(scope="session")
def celeba_half() -> Path:
    """The shared 9,000 real CelebA faces; tests using it skip when the folder is absent."""
    if not (CELEBA_HALF / "images").is_dir():
        pytest.skip(f"celeba-half not found at {CELEBA_HALF}")
    return CELEBA_HALF


@pytest.fixture
def one_cpu_thread():
    """Tiny CPU networks: extra OpenMP threads only spin on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_wandb_run_left_open():
    """A test's wandb run ends with it: Lightning's WandbLogger would join a run left open."""
    yield
    wandb = sys.modules.get("wandb")  # loaded by a test that used it; not imported here
    if wandb is not None and wandb.run is not None:
        wandb.finish()
