"""DataLoader workers that outlive a cluster's SIGTERM long enough for the run to save.

SLURM (time limit, ``scancel``), Kubernetes and ``kill -- -PGID`` send SIGTERM to every process of
the job, the loader's workers included. Lightning turns the main process's SIGTERM into a
checkpoint at the end of the current batch, but a worker killed by the same signal makes torch's
SIGCHLD handler raise "DataLoader worker ... is killed by signal: Terminated" first, and the step
is lost. So each worker leaves a SIGTERM from anyone but its parent to the parent, which shuts the
workers down when it is done. A SIGTERM from the parent itself (``Process.terminate()``: torch
ending a hung worker, multiprocessing's clean-up at exit) still ends the worker at once, so an
interpreter exit never waits on a worker. SIGKILL ends it as always.
"""

from __future__ import annotations

import os
import signal
import threading

from lightning.fabric.utilities.seed import pl_worker_init_function


def worker_init(worker_id: int) -> None:
    """``worker_init_fn`` of the DataModule's loaders: the SIGTERM rule above, SIGINT ignored
    (the main process stops the run on Ctrl-C and ends the workers), then Lightning's
    worker seeding when ``seed_everything(workers=True)`` asked for it (a loader given its own
    ``worker_init_fn`` does not get Lightning's)."""
    leave_sigterm_to_parent(os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.environ.get("PL_SEED_WORKERS") == "1":
        pl_worker_init_function(worker_id)


def leave_sigterm_to_parent(parent: int) -> None:
    """In this (single-threaded, freshly started) process: block SIGTERM in every thread and
    answer it from one daemon thread that reads the sender, exiting at once (status 0, which
    torch's worker watch does not report as a failure) when the sender is ``parent``. Where the
    platform cannot read a signal's sender (macOS, Windows) the worker keeps the default."""
    if not hasattr(signal, "sigwaitinfo"):
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # inherited by later threads

    def answer() -> None:
        while True:
            if signal.sigwaitinfo({signal.SIGTERM}).si_pid == parent:
                os._exit(0)

    threading.Thread(target=answer, name="sigterm-from-parent", daemon=True).start()
