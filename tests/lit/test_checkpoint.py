"""faceinpaint's ModelCheckpoint: last.ckpt holds the newest state, top-k selection unchanged."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from faceinpaint.lit.checkpoint import ModelCheckpoint


class Worsening(BoringModel):
    """Its validation score falls every epoch: only the first validation is the best."""

    def on_validation_epoch_end(self) -> None:
        self.log("score", -float(self.current_epoch))


def fit(module: pl.LightningModule, callback: ModelCheckpoint, **kwargs) -> None:
    options = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=3,
        limit_train_batches=4,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    pl.Trainer(callbacks=[callback], **options).fit(module)


def global_step(path: Path) -> int:
    return torch.load(path, weights_only=False, map_location="cpu")["global_step"]


@pytest.mark.parametrize("save_last", [True, "link"])
def test_last_is_the_newest_state_when_the_monitor_did_not_improve(tmp_path, save_last):
    callback = ModelCheckpoint(
        dirpath=tmp_path, monitor="score", mode="max", save_top_k=1, save_last=save_last
    )
    fit(Worsening(), callback)
    assert global_step(tmp_path / "last.ckpt") == 12  # 3 epochs x 4 batches
    assert Path(callback.best_model_path).name == "epoch=0-step=4.ckpt"
    assert global_step(callback.best_model_path) == 4
    assert not (tmp_path / "last.ckpt").is_symlink()


def test_last_is_written_when_training_stops_between_validations(tmp_path):
    callback = ModelCheckpoint(dirpath=tmp_path, monitor="score", mode="max", save_last=True)
    fit(Worsening(), callback, max_epochs=-1, max_steps=6)  # stops mid-epoch 2, no validation
    assert global_step(tmp_path / "last.ckpt") == 6
    assert global_step(callback.best_model_path) == 4


def test_last_is_written_each_epoch_when_validation_is_off(tmp_path):
    """Validation scheduled in batches but turned off (limit_val_batches 0): last.ckpt still
    follows training at every epoch end, not only at its end."""
    saved_steps = []

    class Watcher(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch > 0:
                saved_steps.append(global_step(tmp_path / "last.ckpt"))

    callback = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    options = dict(limit_val_batches=0, val_check_interval=2, check_val_every_n_epoch=None)
    pl.Trainer(
        callbacks=[callback, Watcher()],
        accelerator="cpu",
        max_epochs=3,
        limit_train_batches=4,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    ).fit(BoringModel())
    assert saved_steps == [4, 8]
    assert global_step(tmp_path / "last.ckpt") == 12


def test_an_improving_run_keeps_lightnings_files(tmp_path):
    class Improving(BoringModel):
        def on_validation_epoch_end(self) -> None:
            self.log("score", float(self.current_epoch))

    callback = ModelCheckpoint(dirpath=tmp_path, monitor="score", mode="max", save_last=True)
    fit(Improving(), callback)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=2-step=12.ckpt", "last.ckpt"]
    assert global_step(tmp_path / "last.ckpt") == 12


# ----------------------------------------------------------------------------- where, how written
def test_checkpoints_go_to_runs_name_whatever_the_version(tmp_path):
    """`--ckpt_path runs/<name>/last.ckpt` resumes any config's run (not version_N/checkpoints)."""
    from lightning.pytorch.loggers import CSVLogger

    for epochs in (1, 2):  # the second run is version_1 of the logger, same checkpoint folder
        callback = ModelCheckpoint(save_last=True)
        fit(BoringModel(), callback, max_epochs=epochs, logger=CSVLogger(tmp_path / "runs", "x"))
        assert Path(callback.dirpath) == tmp_path / "runs" / "x"
    assert global_step(tmp_path / "runs" / "x" / "last.ckpt") == 8  # the newest run's
    assert sorted(p.name for p in (tmp_path / "runs" / "x").iterdir()) == [
        "epoch=0-step=4.ckpt",
        "epoch=1-step=8.ckpt",
        "last.ckpt",
        "version_0",
        "version_1",
    ]


def test_wandb_runs_save_under_their_run_name(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = WandbLogger(
        name="vaegan-paper", project="faceinpaint-test", save_dir=tmp_path / "runs"
    )
    fit(BoringModel(), ModelCheckpoint(save_last=True), max_epochs=1, logger=logger)
    assert global_step(tmp_path / "runs" / "vaegan-paper" / "last.ckpt") == 4


def test_files_are_renamed_into_place_from_their_own_folder(tmp_path, monkeypatch):
    """Lightning's writer stages checkpoints in $TMPDIR: a copy across filesystems."""
    import os

    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(Path(a)), real_replace(a, b)))
    fit(BoringModel(), ModelCheckpoint(dirpath=tmp_path, save_last=True), max_epochs=1)
    assert renamed and {p.parent for p in renamed} == {tmp_path}
    assert not list(tmp_path.glob("*.tmp"))


FAULT_INJECTION = """
import builtins, os, signal, sys
import lightning.pytorch as pl
from lightning.pytorch.demos.boring_classes import BoringModel
from faceinpaint.lit.checkpoint import ModelCheckpoint

folder = os.path.abspath(sys.argv[1])
opened = []

def in_folder_for_writing(path, writing):
    if isinstance(path, int) or not writing or os.path.basename(path) == "run.lock":
        return False
    return os.path.dirname(os.path.abspath(os.fsdecode(path))) == folder

def killed_after(opener, is_writing):
    # SIGKILL right after the second checkpoint save opened (created or truncated) its file
    def wrapped(path, *args, **kwargs):
        result = opener(path, *args, **kwargs)
        if in_folder_for_writing(path, is_writing(*args, **kwargs)):
            opened.append(path)
            if len(opened) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

builtins.open = killed_after(builtins.open, lambda mode="r", *a, **k: any(c in mode for c in "wax+"))
os.open = killed_after(os.open, lambda flags, *a, **k: bool(flags & (os.O_WRONLY | os.O_RDWR)))
callback = ModelCheckpoint(dirpath=folder, save_last=True, save_top_k=0, every_n_train_steps=2)
pl.Trainer(
    accelerator="cpu", max_steps=6, logger=False, enable_progress_bar=False,
    enable_model_summary=False, callbacks=[callback],
).fit(BoringModel())
"""


def test_a_kill_in_the_middle_of_a_save_leaves_the_last_good_checkpoint(tmp_path):
    """Fault injection: SIGKILL while the second last.ckpt is written, $TMPDIR on another disk."""
    import os
    import signal
    import subprocess
    import sys

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a $TMPDIR on another filesystem than the checkpoints (/dev/shm)")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "TMPDIR": str(shm)}
    done = subprocess.run(
        [sys.executable, "-c", FAULT_INJECTION, str(tmp_path / "ckpt")],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert global_step(tmp_path / "ckpt" / "last.ckpt") == 2  # the first save, whole
    resumed = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[resumed],
    )
    trainer.fit(BoringModel(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert global_step(tmp_path / "ckpt" / "last.ckpt") == 4
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.ckpt"]


def test_an_unreadable_checkpoint_names_itself_and_the_previous_good_one(tmp_path):
    from faceinpaint.lit.loading import read_checkpoint

    fit(BoringModel(), ModelCheckpoint(dirpath=tmp_path, save_last=True), max_epochs=1)
    (tmp_path / "last.ckpt").write_bytes(b"")  # what a kill during Lightning's copy left
    message = r"last.ckpt' is not a readable PyTorch checkpoint .*0 bytes.*epoch=0-step=4.ckpt"
    with pytest.raises(ValueError, match=message):
        read_checkpoint(tmp_path / "last.ckpt")
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=8,
        logger=False,
        enable_progress_bar=False,
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "new", save_last=True)],
    )
    with pytest.raises(ValueError, match=message):
        trainer.fit(BoringModel(), ckpt_path=tmp_path / "last.ckpt")


def test_checkpoints_load_without_running_code(tmp_path):
    """weights_only=True: a checkpoint holding an arbitrary object is refused, with the trust note."""
    from faceinpaint.lit.loading import read_checkpoint

    torch.save({"state_dict": {}, "payload": Worsening}, tmp_path / "a.ckpt")
    with pytest.raises(ValueError, match="holds objects other than tensors.*trust"):
        read_checkpoint(tmp_path / "a.ckpt")


def test_the_allow_list_covers_a_datamodule_built_in_python(tmp_path):
    from faceinpaint.data.masks import MaskSpec
    from faceinpaint.lit.loading import read_checkpoint

    hparams = {"train_mask": MaskSpec(kind="center")}
    torch.save({"datamodule_hyper_parameters": hparams}, tmp_path / "a.ckpt")
    assert read_checkpoint(tmp_path / "a.ckpt")["datamodule_hyper_parameters"] == hparams


KILLED_WRITER = """
import os, signal, sys
from faceinpaint.io import atomic_write

with atomic_write(sys.argv[1], "wb") as handle:
    handle.write(b"half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_any_load_of_a_checkpoint_clears_what_a_killed_save_left_beside_it(tmp_path):
    """Not only the next fit: eval, inpaint, test (every read_checkpoint) remove a dead save's
    temporary file, and leave alone a live writer's and another host's."""
    import os
    import signal
    import subprocess
    import sys

    from faceinpaint.io import atomic_write
    from faceinpaint.lit.loading import read_checkpoint

    fit(BoringModel(), ModelCheckpoint(dirpath=tmp_path, save_last=True), max_epochs=1)
    repo = Path(__file__).resolve().parents[2]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "last.ckpt")],
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    (dead,) = tmp_path.glob(".last.ckpt.*.tmp")
    elsewhere = tmp_path / ".last.ckpt.another-host.999999999.abcd1234.tmp"  # no such PID here
    elsewhere.write_bytes(b"")
    with atomic_write(tmp_path / "epoch=0-step=4.ckpt", "wb") as handle:  # a live writer
        (live,) = tmp_path.glob(".epoch=0-step=4.ckpt.*.tmp")
        assert read_checkpoint(tmp_path / "last.ckpt")["global_step"] == 4
        assert not dead.exists()
        assert live.exists() and elsewhere.exists()
        handle.write((tmp_path / "last.ckpt").read_bytes())


@pytest.mark.parametrize(
    "class_path, name, default, other",
    [
        ("faceinpaint.lit.dcgan.DCGANModule", "generator_activation", "relu", "leaky_relu"),
        ("faceinpaint.lit.vaegan.VAEGANModule", "residual_second_norm", True, False),
    ],
)
def test_a_checkpoint_without_an_architecture_setting_was_built_with_its_default(
    class_path, name, default, other
):
    from faceinpaint.lit.checkpoint import check_resume

    former = {"hyper_parameters": {"latent_dim": 100}}  # saved before the setting existed
    check_resume(class_path, {"latent_dim": 100, name: default}, former, "old.ckpt", fit=False)
    with pytest.raises(ValueError, match=f"{name}: checkpoint 'old.ckpt' has {default}"):
        check_resume(class_path, {"latent_dim": 100, name: other}, former, "old.ckpt", fit=False)
