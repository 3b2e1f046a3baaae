"""One live run per checkpoint folder: ``runs/<name>/run.lock``.

Two runs with the same logger name and ``save_dir`` share ``runs/<name>/last.ckpt``; without a
lock the later one silently overwrites the other's state. A run that trains holds an exclusive
``flock`` on ``run.lock`` in its checkpoint folder and writes its PID, host and start time into
it, and removes the file when it ends. A second run on that folder finds the lock held and
stops with one line naming the first run. The kernel drops the lock when its process dies (a
SIGKILL, a power cut, a node lost), so a lock file left behind names a dead run: the next run
takes it over with a note. The lock works
across hosts wherever ``flock`` does (local disks; NFS maps it to POSIX locks).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


def describe(holder: dict) -> str:
    """``PID 123 on host h, started 2026-12-07 13:20:00 UTC`` from a lock file's contents."""
    if not holder:
        return "a run that has not written its PID yet"
    return f"PID {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace")
    try:
        holder = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        holder = {"pid": "?", "host": "?", "started": f"? (unreadable lock: {text[:40]!r})"}
    return holder if isinstance(holder, dict) else {}


class RunLock:
    """The lock of one checkpoint folder, held from ``acquire`` to ``release``."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, folder: str | Path) -> RunLock:
        """Hold ``folder/run.lock``; ``FileExistsError`` naming the other run when a live run
        holds it."""
        path = Path(folder) / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise FileExistsError(
                    f"{path.parent} is the checkpoint folder of a live run ({describe(holder)}): "
                    "a second run would overwrite its last.ckpt; give this run its own logger "
                    "name or save_dir (--trainer.logger.init_args.name), or wait for that run "
                    "to end"
                ) from None
            if path.exists() and os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
            os.close(fd)  # the run that held it removed the file in between: open the new one
        previous = _read(fd)
        if previous:
            log.warning(
                "%s named a run that holds it no longer (%s; killed?): this run takes it over",
                path,
                describe(previous),
            )
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder).encode())
        return cls(path, fd)

    def release(self) -> None:
        """Remove the lock file, then drop the lock."""
        if self.fd < 0:
            return
        self.path.unlink(missing_ok=True)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1
