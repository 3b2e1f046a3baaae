"""Loader workers leave a SIGTERM from elsewhere to their parent, end on their parent's own, and
never hold up the interpreter's exit; the DataModule's loaders use them."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.data.workers import leave_sigterm_to_parent, worker_init

REPO = Path(__file__).resolve().parents[2]


def _worker(ready) -> None:
    leave_sigterm_to_parent(os.getppid())
    ready.set()
    time.sleep(60)


def test_sigterm_from_another_process_leaves_the_worker_and_the_parents_ends_it() -> None:
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    worker = context.Process(target=_worker, args=(ready,), daemon=True)
    worker.start()
    assert ready.wait(30)
    subprocess.run(["kill", "-TERM", str(worker.pid)], check=True)  # sent by `kill`, not us
    time.sleep(0.5)
    assert worker.is_alive()
    worker.terminate()  # from the parent
    worker.join(10)
    assert worker.exitcode == 0


def test_interpreter_exit_does_not_wait_on_live_persistent_workers() -> None:
    script = textwrap.dedent(
        """
        from torch.utils.data import DataLoader
        from faceinpaint.data.workers import worker_init

        loader = DataLoader(list(range(64)), batch_size=2, num_workers=2,
                            persistent_workers=True, worker_init_fn=worker_init)
        batches = iter(loader)
        next(batches)
        print("exiting", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "exiting"


def test_the_datamodule_loaders_use_the_worker_init() -> None:
    data = FaceDataModule(image_size=32, batch_size=4, num_workers=2, synthetic_size=40)
    data.setup("fit")
    assert data.train_dataloader().worker_init_fn is worker_init
    assert data.val_dataloader().worker_init_fn is worker_init
    data.num_workers = 0
    assert data.train_dataloader().worker_init_fn is None
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the main process is untouched
