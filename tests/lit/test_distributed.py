"""DDP correctness: unpadded evaluation shards, merged search results, per-rank seeds.

The ``slow`` tests run two CPU processes (gloo, ``ddp_spawn``) on tiny models and the embedded
faces; the others check the same pieces in one process.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from helpers import RecordPerRank, cpu_trainer, tiny_dcgan, tiny_vaegan
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DistributedSampler

from faceinpaint.batch import INDEX
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.sampling import UnpaddedDistributedSampler, shard_indices
from faceinpaint.lit.distributed import (
    MergeRankResults,
    SeedPerRank,
    merge_rank_results,
    rank_file,
)

# synthetic_size 70 splits 56 / 7 / 7: odd val and test splits
SYNTHETIC_SIZE = 70
SIZE = 32


def _data(**kwargs) -> FaceDataModule:
    options = dict(
        image_size=SIZE,
        synthetic_size=SYNTHETIC_SIZE,
        batch_size=4,
        eval_batch_size=3,
        num_workers=0,
        flip=False,
        test_mask={"kind": "center", "side": 0.5},
        val_mask={"kind": "random_square", "min_side": 0.25, "max_side": 0.5},
    )
    return FaceDataModule(**(options | kwargs))


# ------------------------------------------------------------------------------ sampler
@pytest.mark.parametrize("length", [0, 1, 2, 7, 8, 9])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_shards_hold_every_index_exactly_once(length, world_size):
    shards = [
        list(UnpaddedDistributedSampler(range(length), world_size, r)) for r in range(world_size)
    ]
    assert sorted(i for shard in shards for i in shard) == list(range(length))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert all(shard == sorted(shard) for shard in shards)
    sampler = UnpaddedDistributedSampler(range(length), world_size, world_size - 1)
    assert (
        len(sampler) == len(list(sampler)) == len(shard_indices(length, world_size - 1, world_size))
    )


def test_torch_sampler_pads_where_ours_does_not():
    padded = [list(DistributedSampler(range(7), 2, r, shuffle=False)) for r in range(2)]
    assert padded == [[0, 2, 4, 6], [1, 3, 5, 0]]  # image 0 twice: the reason for our sampler
    ours = [list(UnpaddedDistributedSampler(range(7), 2, r)) for r in range(2)]
    assert ours == [[0, 2, 4, 6], [1, 3, 5]]


def test_bad_rank_is_refused():
    with pytest.raises(ValueError, match="rank 2 of 2"):
        shard_indices(7, 2, 2)


def test_datamodule_shards_eval_loaders_and_leaves_training_to_lightning():
    data = _data()
    data.trainer = SimpleNamespace(world_size=2, global_rank=1)
    seen = [batch[INDEX].tolist() for batch in data.test_dataloader()]
    assert seen == [[1, 3, 5]]
    assert isinstance(data.val_dataloader().sampler, UnpaddedDistributedSampler)
    assert not isinstance(data.train_dataloader().sampler, DistributedSampler)
    data.trainer = SimpleNamespace(world_size=1, global_rank=0)
    assert [i for batch in data.test_dataloader() for i in batch[INDEX].tolist()] == list(range(7))


# ------------------------------------------------------------------------------ merging
def _write_rank(directory: Path, rank: int, world_size: int, indices: list[int]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rows = "".join(json.dumps({"index": i, "loss": float(i) / 10}) + "\n" for i in indices)
    rank_file(directory, rank, world_size).write_text(rows)
    for i in indices:
        (directory / f"{i:06d}.png").write_bytes(b"png")


def test_merge_sorts_rows_by_index_and_removes_rank_files(tmp_path):
    _write_rank(tmp_path, 0, 2, [0, 2, 4, 6])
    _write_rank(tmp_path, 1, 2, [1, 3, 5])
    merged = merge_rank_results(tmp_path, [[0, 2, 4, 6], [1, 3, 5]])
    assert [row["index"] for row in merged] == list(range(7))
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == merged
    assert merged[3]["loss"] == pytest.approx(0.3)
    assert sorted(p.name for p in tmp_path.glob("results*")) == ["results.jsonl"]


def test_merge_names_duplicated_missing_and_unsearched_indices(tmp_path):
    _write_rank(tmp_path, 0, 2, [0, 2])
    _write_rank(tmp_path, 1, 2, [1])
    with pytest.raises(ValueError, match=r"more than one rank or twice: \[0\]"):
        merge_rank_results(tmp_path, [[0, 2], [1, 0]])
    with pytest.raises(ValueError, match=r"no row for \[3\]"):
        merge_rank_results(tmp_path, [[0, 2], [1, 3]], keep_rank_files=True)
    with pytest.raises(ValueError, match=r"rows never searched \[2\]"):
        merge_rank_results(tmp_path, [[0], [1]], keep_rank_files=True)
    (tmp_path / "000001.png").unlink()
    with pytest.raises(ValueError, match=r"no image for \[1\]"):
        merge_rank_results(tmp_path, [[0, 2], [1]], keep_rank_files=True)


def test_merge_refuses_a_rank_that_searched_but_wrote_nothing(tmp_path):
    _write_rank(tmp_path, 0, 2, [0])
    with pytest.raises(ValueError, match="rank 1 searched 1 images but wrote no"):
        merge_rank_results(tmp_path, [[0], [1]])


# ------------------------------------------------------------------------------ seeding
def _draws() -> tuple[float, float, float]:
    return torch.rand(()).item(), float(np.random.rand()), random.random()


def test_seed_per_rank_gives_each_rank_its_own_stream_and_leaves_one_process_alone():
    callback = SeedPerRank(seed=5)
    draws = []
    for rank in (0, 1):
        callback.on_train_start(SimpleNamespace(world_size=2, global_rank=rank), None)
        draws.append(_draws())
    pl.seed_everything(5, verbose=False)
    assert draws[0] == _draws()  # rank 0 keeps the configured seed
    assert all(a != b for a, b in zip(draws[0], draws[1], strict=True))
    pl.seed_everything(5, verbose=False)
    expected = _draws()
    pl.seed_everything(5, verbose=False)
    callback.on_train_start(SimpleNamespace(world_size=1, global_rank=0), None)
    assert _draws() == expected


# ------------------------------------------------------------------------------ two processes
def _trainer(tmp_path: Path, devices: int, **kwargs) -> pl.Trainer:
    # a collective reached by one rank only fails after a minute instead of hanging
    strategy = (
        DDPStrategy(
            start_method="spawn",
            find_unused_parameters=True,
            process_group_backend="gloo",
            timeout=timedelta(seconds=60),
        )
        if devices > 1
        else "auto"
    )
    return cpu_trainer(tmp_path, devices=devices, strategy=strategy, **kwargs)


def _dcgan(output_dir: Path):
    pl.seed_everything(0, verbose=False)
    return tiny_dcgan(
        image_size=SIZE, search={"candidates": 3, "iterations": 3}, output_dir=str(output_dir)
    )


@pytest.mark.slow
def test_search_on_two_ranks_writes_each_image_once_with_single_process_results(tmp_path):
    # 7 test images, batches of 3: rank 0 searches [0,2,4] + [6], rank 1 [1,3,5]
    runs = {}
    for devices in (1, 2):
        out = tmp_path / f"out{devices}"
        trainer = _trainer(tmp_path, devices, inference_mode=False, callbacks=[MergeRankResults()])
        trainer.predict(_dcgan(out), datamodule=_data(), return_predictions=False)
        lines = (out / "predict" / "results.jsonl").read_text().splitlines()
        runs[devices] = [json.loads(line) for line in lines]
        assert sorted(p.name for p in (out / "predict").glob("results*")) == ["results.jsonl"]
        assert len(list((out / "predict").glob("0000??.png"))) == 7
    assert [row["index"] for row in runs[2]] == list(range(7))
    for single, sharded in zip(runs[1], runs[2], strict=True):
        assert sharded["loss"] == pytest.approx(single["loss"], rel=1e-5)
        assert sharded["candidate"] == single["candidate"]


def _vaegan(**kwargs):
    pl.seed_everything(0, verbose=False)
    options = dict(
        image_size=SIZE,
        latent_dim=8,
        feature_layers=("relu1_1", "relu2_1", "relu3_1"),
        landmark_checkpoint="random",
        weights={"landmark": 0.1},
        stage_boundaries=(1, 2, 3),
        critic={"n_critic": 2},
    )
    return tiny_vaegan(**(options | kwargs))


@pytest.mark.slow
def test_vaegan_fits_on_two_ranks_with_synchronised_weights_and_per_rank_noise(tmp_path):
    initial = torch.cat([p.detach().flatten() for p in _vaegan().generator.parameters()])
    trainer = _trainer(
        tmp_path,
        2,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[SeedPerRank(), RecordPerRank(tmp_path)],
    )
    trainer.fit(_vaegan(), datamodule=_data(train_mask={"kind": "random_square"}))
    weights = [torch.load(tmp_path / f"generator.rank{r}.pt") for r in (0, 1)]
    draws = [torch.load(tmp_path / f"draw.rank{r}.pt") for r in (0, 1)]
    assert torch.equal(weights[0], weights[1]), "DDP replicas diverged"
    assert not torch.equal(weights[0], initial), "the generator never changed"
    assert not torch.equal(draws[0], draws[1]), "both ranks drew the same noise"


@pytest.mark.slow
def test_validation_metrics_on_two_ranks_equal_one_process(tmp_path):
    metrics = {}
    for devices in (1, 2):
        trainer = _trainer(tmp_path, devices)
        (metrics[devices],) = trainer.validate(_vaegan(hole_fill="zeros"), datamodule=_data())
    assert set(metrics[1]) >= {"val/psnr", "val/ssim", "val/psnr_hole", "val/ssim_hole"}
    for name in ("val/psnr", "val/ssim", "val/psnr_hole", "val/ssim_hole"):
        assert metrics[2][name] == pytest.approx(metrics[1][name], rel=1e-5), name


@pytest.mark.slow
def test_dcgan_fits_on_two_ranks_with_its_epoch_end_samples(tmp_path):
    # the samples grid at each epoch's end is written by rank 0 alone: nothing in it may be a
    # collective (trainer.log_dir is one), or rank 0 waits forever for rank 1
    model = _dcgan(tmp_path / "out")
    trainer = _trainer(tmp_path, 2, max_epochs=1, limit_val_batches=0, callbacks=[SeedPerRank()])
    trainer.fit(model, datamodule=_data(batch_size=8))
    assert len(list(tmp_path.glob("**/images/samples_*.png"))) == 1


@pytest.fixture
def slurm_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a one-task SLURM batch job."""
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "faceinpaint-test")
    monkeypatch.setenv("SLURM_JOB_ID", "1234")


def test_slurm_jobs_are_requeued_by_their_script_not_lightning(slurm_job: None) -> None:
    from lightning.pytorch.plugins.environments import LightningEnvironment, SLURMEnvironment

    from faceinpaint.lit.distributed import without_slurm_requeue

    (environment,) = without_slurm_requeue(None)
    assert isinstance(environment, SLURMEnvironment) and not environment.auto_requeue
    chosen = [LightningEnvironment()]
    assert without_slurm_requeue(chosen) is chosen


def test_without_slurm_the_plugins_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    from faceinpaint.lit.distributed import without_slurm_requeue

    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    assert without_slurm_requeue(None) is None


def test_fit_in_a_slurm_job_leaves_requeueing_to_the_script(
    slurm_job: None, tmp_path: Path, one_cpu_thread: None
) -> None:
    from faceinpaint.cli import cli_main

    cli = cli_main(
        [
            "fit",
            "--config",
            str(Path(__file__).resolve().parents[2] / "configs/dcgan/smoke.yaml"),
            "--trainer.max_steps",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
            "--data.cache_dir",
            str(tmp_path / "cache"),
        ]
    )
    assert cli.trainer._accelerator_connector.cluster_environment.auto_requeue is False
