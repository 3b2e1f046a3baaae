"""What several test modules build: CPU trainers, tiny Lightning modules, smooth faces.

Imported as ``helpers`` (``pythonpath = ["tests"]`` in pyproject.toml). Every builder takes
overrides, so each test states only what it needs to differ.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from io import RawIOBase
from pathlib import Path
from types import MappingProxyType
from typing import Any

import lightning.pytorch as pl
import torch

from faceinpaint.batch import IMAGE, INDEX, MASK


def cpu_trainer(tmp_path: Path, **overrides: Any) -> pl.Trainer:
    """A quiet CPU trainer writing under ``tmp_path``: no logger, checkpoints, bars or summary."""
    options = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    return pl.Trainer(**(options | overrides))


class SmoothFaces(torch.utils.data.Dataset):
    """``n`` batch-contract samples: smooth random images (seeded) with one centred square hole."""

    def __init__(self, n: int, size: int = 16, hole: tuple[int, int] = (4, 12)) -> None:
        generator = torch.Generator().manual_seed(0)
        coarse = torch.rand(n, 3, 4, 4, generator=generator) * 2 - 1
        self.images = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear")
        self.mask = torch.zeros(1, size, size)  # (1, S, S), 1 = hole
        self.mask[:, hole[0] : hole[1], hole[0] : hole[1]] = 1.0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {IMAGE: self.images[i], MASK: self.mask, INDEX: torch.tensor(i)}


def tiny_dcgan(
    search: Mapping[str, Any] = MappingProxyType({}), **overrides: Any
) -> pl.LightningModule:
    """A 16 px DCGAN with 4-channel widths and a 2 x 2 search (candidates x iterations);
    ``search``: SearchSettings fields replacing those."""
    from faceinpaint.latent_search import SearchSettings
    from faceinpaint.lit.dcgan import DCGANModule

    options = dict(
        latent_dim=8,
        ngf=4,
        ndf=4,
        image_size=16,
        num_samples=4,
        sample_every_n_batches=0,
        search=SearchSettings(**({"candidates": 2, "iterations": 2} | dict(search))),
    )
    return DCGANModule(**(options | overrides))


def tiny_vaegan(
    weights: Mapping[str, float] = MappingProxyType({}),
    critic: Mapping[str, Any] = MappingProxyType({}),
    **overrides: Any,
) -> pl.LightningModule:
    """A 32 px VAE-GAN with 4-8 channel widths, random VGG, no landmark term, stages (2, 4, 6);
    ``weights`` and ``critic``: LossWeights and CriticSettings fields replacing the defaults."""
    from faceinpaint.lit.vaegan import VAEGANModule
    from faceinpaint.losses.vaegan import CriticSettings, LossWeights

    options = dict(
        image_size=32,
        latent_dim=16,
        base_channels=4,
        max_channels=8,
        num_layers=3,
        critic_base_channels=4,
        critic_max_channels=8,
        local_size=16,
        vgg_weights="random",
        feature_layers=("relu1_1", "relu2_1"),
        weights=LossWeights(**({"landmark": 0.0} | dict(weights))),
        critic=CriticSettings(**critic),
        stage_boundaries=(2, 4, 6),
        image_log_every_n_steps=0,
    )
    return VAEGANModule(**(options | overrides))


def untrained_vaegan_checkpoint(path: Path) -> Path:
    """An untrained 64 px VAE-GAN with tiny widths (seeded weights), saved as a Lightning
    checkpoint at ``path``: what the photo command needs to run."""
    from faceinpaint.lit.vaegan import VAEGANModule
    from faceinpaint.losses.vaegan import LossWeights

    torch.manual_seed(0)
    model = VAEGANModule(
        image_size=64, latent_dim=8, base_channels=4, max_channels=8, num_layers=4,
        critic_base_channels=4, critic_max_channels=8, local_size=32,
        weights=LossWeights(feat=0.0, landmark=0.0), vgg_weights="random", stage_boundaries=[1, 2, 3],
    )  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def two_faces_photo(celeba_half: Path, path: Path) -> Path:
    """A 320 x 230 photo of two celeba-half faces: 008001 large at the left, 008003 smaller at
    (200, 40), on grey."""
    from PIL import Image

    big = Image.open(celeba_half / "images/008001.jpg").resize((178, 218), Image.Resampling.BICUBIC)
    small = Image.open(celeba_half / "images/008003.jpg").resize(
        (116, 142), Image.Resampling.BICUBIC
    )
    canvas = Image.new("RGB", (320, 230), (90, 90, 90))
    canvas.paste(big, (0, 0)), canvas.paste(small, (200, 40))
    canvas.save(path)
    return path


class RecordPerRank(pl.Callback):
    """Each rank saves its first training random draw and its final generator parameters.

    Here, not in the test module: ``ddp_spawn`` workers unpickle it by module name, and a test
    module imported by pytest's ``importlib`` mode is not importable in them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            torch.save(torch.rand(4), self.directory / f"draw.rank{trainer.global_rank}.pt")

    def on_train_end(self, trainer, pl_module) -> None:
        flat = torch.cat([p.detach().flatten() for p in pl_module.generator.parameters()])
        torch.save(flat, self.directory / f"generator.rank{trainer.global_rank}.pt")


class FillsUp(RawIOBase):
    """A file on a disk that is full once ``limit`` bytes are written."""

    def __init__(self, fd: int, limit: int) -> None:
        self.raw = open(fd, "wb", buffering=0)  # noqa: SIM115 (closed by close())
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.raw.tell() + len(data) > self.limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.raw.write(data)

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.close()
        super().close()


def finish_wandb_runs(folder: Path, timeout: float = 60.0) -> None:
    """Finish the current wandb run and wait until every run file under ``folder`` holds its
    exit record (wandb's service may still be writing when ``finish`` returns)."""
    import time

    import wandb

    from faceinpaint.eval.wandb_files import read_records, run_files

    wandb.finish()
    deadline = time.monotonic() + timeout
    while True:
        files = run_files(folder)
        done = [
            any(record.WhichOneof("record_type") == "exit" for record in read_records(path))
            for path in files
        ]
        if files and all(done):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"wandb run files under {folder} unfinished after {timeout} s")
        time.sleep(0.1)
