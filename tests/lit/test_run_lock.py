"""One live run per checkpoint folder: a second run stops with one line naming the first; the
lock of a dead run is taken over with a note (faceinpaint.lit.run_lock)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from faceinpaint.cli import main
from faceinpaint.lit.run_lock import LOCK_FILE, RunLock

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from faceinpaint.lit.run_lock import RunLock
RunLock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


def test_a_held_lock_refuses_a_second_holder_until_released(tmp_path: Path) -> None:
    first = RunLock.acquire(tmp_path)
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(FileExistsError, match=rf"live run \(PID {os.getpid()} on host "):
        RunLock.acquire(tmp_path)
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    RunLock.acquire(tmp_path).release()


def test_the_lock_of_a_dead_run_is_taken_over_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = {"pid": 999999, "host": "gone", "started": "2026-12-01 00:00:00 UTC"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(dead))  # nobody holds its flock
    with caplog.at_level(logging.WARNING, logger="faceinpaint"):
        lock = RunLock.acquire(tmp_path)
    assert "named a run that holds it no longer (PID 999999 on host gone" in caplog.text
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()


def fit(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> tuple[object, str]:
    argv = ["fit", "--config", str(REPO / "configs/dcgan/smoke.yaml"), "--data.cache_dir", "cache"]
    argv += ["--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false"]
    monkeypatch.setattr(sys, "argv", ["faceinpaint", *argv])
    try:
        main()
    except SystemExit as exit_info:
        return exit_info.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


def test_a_second_live_run_on_a_checkpoint_folder_stops_and_a_dead_ones_lock_is_taken_over(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two fits of one config share runs/<name>/last.ckpt: the second must not overwrite it."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "dcgan-smoke"
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"the live run's state")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    live = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert live.stdout.readline().strip() == b"held"
        code, err = fit(capsys, monkeypatch)
        assert code == 2
        errors = [line for line in err.splitlines() if ": error: " in line]
        assert len(errors) == 1 and "Traceback" not in err, err
        assert re.match(
            rf"faceinpaint fit: error: runs/dcgan-smoke is the checkpoint folder of a live run "
            rf"\(PID {live.pid} on host {re.escape(socket.gethostname())}, started ",
            errors[0],
        ), errors[0]
        assert (folder / "last.ckpt").read_bytes() == b"the live run's state"
    finally:
        live.send_signal(signal.SIGKILL)  # its lock file stays, naming a dead PID
        live.wait(timeout=60)
    with caplog.at_level(logging.WARNING, logger="faceinpaint"):
        code, err = fit(capsys, monkeypatch)
    assert code == 0, err
    assert f"named a run that holds it no longer (PID {live.pid} on host" in caplog.text
    assert (folder / "last.ckpt").read_bytes() != b"the live run's state"
    assert not (folder / LOCK_FILE).exists()


def test_a_holder_that_has_not_written_its_pid_yet_still_refuses(tmp_path: Path) -> None:
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # locked, still empty: a run between flock and write
    try:
        with pytest.raises(FileExistsError, match="live run \\(a run that has not written its PID"):
            RunLock.acquire(tmp_path)
    finally:
        os.close(fd)
