"""configs/ddp/slurm-2x4.sbatch with stand-ins for srun and scontrol: it works in the folder it was
submitted from, activates its environment, resumes from last.ckpt and requeues after a SIGTERM save."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "configs" / "ddp" / "slurm-2x4.sbatch"


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def job(tmp_path: Path) -> dict:
    """A submit folder holding the configs, a stand-in environment, and a PATH with stub srun and
    scontrol that record their arguments (and the environment srun ran in)."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    submit = tmp_path / "repo"
    shutil.copytree(REPO / "configs", submit / "configs")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("export ACTIVATED_VENV=yes\n")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls.log"
    _stub(stubs / "srun", f'echo "srun $PWD $ACTIVATED_VENV $*" >> {log}\nexit ${{SRUN_RC:-0}}\n')
    _stub(stubs / "scontrol", f'echo "scontrol $*" >> {log}\n')
    env = {
        **os.environ,
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "SLURM_SUBMIT_DIR": str(submit),
        "SLURM_JOB_ID": "4242",
        "FACEINPAINT_VENV": str(venv),
        "CELEBA": "/data/celeba",
    }
    return {"submit": submit, "env": env, "log": log}


def _run(job: dict, **extra: str) -> tuple[int, list[str]]:
    result = subprocess.run(
        ["bash", str(SCRIPT)], cwd="/", env={**job["env"], **extra}, capture_output=True, text=True
    )
    calls = job["log"].read_text().splitlines() if job["log"].exists() else []
    return result.returncode, calls


def test_sbatch_runs_in_the_submit_folder_with_its_environment(job: dict) -> None:
    status, calls = _run(job)
    assert status == 0
    assert len(calls) == 1
    assert calls[0].startswith(
        f"srun {job['submit']} yes faceinpaint fit --config configs/vaegan/paper.yaml"
    )
    assert "--data.root /data/celeba" in calls[0] and "--ckpt_path" not in calls[0]


def test_sbatch_resumes_from_last_ckpt_and_requeues_after_a_sigterm_save(job: dict) -> None:
    checkpoint = job["submit"] / "runs" / "vaegan-paper" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    status, calls = _run(job, SRUN_RC="143")
    assert status == 143
    assert calls[0].endswith("--ckpt_path runs/vaegan-paper/last.ckpt")
    assert calls[1] == "scontrol requeue 4242"


def test_sbatch_does_not_requeue_a_failed_run(job: dict) -> None:
    status, calls = _run(job, SRUN_RC="1")
    assert status == 1
    assert [call.split()[0] for call in calls] == ["srun"]


def test_sbatch_refuses_a_missing_environment(job: dict) -> None:
    status, calls = _run(job, FACEINPAINT_VENV=str(job["submit"] / "no-venv"))
    assert status == 2 and calls == []
