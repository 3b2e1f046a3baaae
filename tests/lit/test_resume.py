"""Runs stopped by SIGTERM save their step and exit non-zero; resumed runs follow the resume rules."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from faceinpaint.cli import cli_main

REPO = Path(__file__).resolve().parents[2]
VAEGAN = REPO / "configs" / "vaegan" / "smoke.yaml"
DCGAN = REPO / "configs" / "dcgan" / "smoke.yaml"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]

ANNOUNCE = '''
import time
import lightning.pytorch as pl

def state(trainer, module):
    return f"step {trainer.global_step} updates {module.generator_updates} stage {module.curriculum_stage}"

class Announce(pl.Callback):
    """Prints the VAE-GAN's position after each training batch and at the start of training."""

    def on_train_start(self, trainer, module):
        print("start", state(trainer, module), flush=True)

    def on_train_batch_end(self, trainer, module, *args):
        print("batch", state(trainer, module), flush=True)
        time.sleep(0.05)
'''


def position(line: str) -> dict[str, int]:
    words = line.split()[1:]
    return {key: int(value) for key, value in zip(words[::2], words[1::2], strict=True)}


def saved(path: Path) -> dict[str, int]:
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    return {
        "step": checkpoint["global_step"],
        "updates": checkpoint["vaegan_curriculum"]["generator_updates"],
        "stage": checkpoint["vaegan_curriculum"]["stage"],
    }


def global_step(path: Path) -> int:
    return torch.load(path, weights_only=True, map_location="cpu")["global_step"]


def fit_until_sigterm(
    folder: Path, *args: str, group: bool = False, signum: int = signal.SIGTERM
) -> dict:
    """A VAE-GAN smoke run (boundaries 4, 8, 1000) in ``folder`` sent SIGTERM (or ``signum``) in
    stage 2, as SLURM would: to the main process, or (``group``) to its whole process group,
    loader workers too (as Ctrl-C in a terminal sends SIGINT)."""
    (folder / "announce.py").write_text(ANNOUNCE)
    command = [
        sys.executable,
        "-m",
        "faceinpaint",
        "fit",
        "--config",
        str(VAEGAN),
        "--model.init_args.stage_boundaries",
        "[4, 8, 1000]",
        "--trainer.callbacks+=announce.Announce",
        *QUIET,
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{folder}", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
        # as from a terminal: Ctrl-C at its default, whatever this test process inherited or
        # was left with (an ignored SIGINT is inherited across exec, and fit leaves an ignored
        # Ctrl-C alone, as under nohup)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if line.startswith("batch") and position(line)["updates"] >= 6:
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
            break
    out, err = process.communicate(timeout=300)
    lines += [line.strip() for line in out.splitlines()]
    last = [position(line) for line in lines if line.startswith("batch")][-1]
    return {
        "folder": folder,
        "pid": process.pid,
        "returncode": process.returncode,
        "stderr": err,
        "last": last,
    }


@pytest.fixture(scope="module")
def terminated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return fit_until_sigterm(tmp_path_factory.mktemp("sigterm"))


def test_sigterm_saves_the_current_step_and_exits_nonzero(terminated: dict) -> None:
    assert terminated["returncode"] == 128 + signal.SIGTERM, terminated["stderr"][-3000:]
    checkpoint = terminated["folder"] / "runs" / "vaegan-smoke" / "last.ckpt"
    assert saved(checkpoint) == terminated["last"]  # the step the run had finished
    assert terminated["last"]["stage"] == 2
    assert "stopped by SIGTERM" in terminated["stderr"]
    assert "--ckpt_path runs/vaegan-smoke/last.ckpt" in terminated["stderr"]


def test_sigterm_to_the_process_group_with_loader_workers_saves_the_current_step(
    tmp_path: Path,
) -> None:
    """SLURM and Kubernetes signal every process of the job: the loader's workers must outlive
    the signal until the run has saved (faceinpaint.data.workers)."""
    run = fit_until_sigterm(tmp_path, "--data.num_workers", "2", group=True)
    assert run["returncode"] == 128 + signal.SIGTERM, run["stderr"][-3000:]
    assert saved(tmp_path / "runs" / "vaegan-smoke" / "last.ckpt") == run["last"]
    assert "killed by signal" not in run["stderr"]
    deadline = time.monotonic() + 30
    while True:  # no process of the group outlives the run for long
        try:
            os.killpg(run["pid"], 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a loader worker outlived the run by 30 s"
        time.sleep(0.2)


def test_ctrl_c_saves_the_current_step_like_sigterm(tmp_path: Path) -> None:
    run = fit_until_sigterm(tmp_path, "--data.num_workers", "2", group=True, signum=signal.SIGINT)
    assert run["returncode"] == 128 + signal.SIGINT, run["stderr"][-3000:]
    assert saved(tmp_path / "runs" / "vaegan-smoke" / "last.ckpt") == run["last"]
    assert "stopped by SIGINT" in run["stderr"]
    assert "--ckpt_path runs/vaegan-smoke/last.ckpt" in run["stderr"]
    assert "Traceback" not in run["stderr"]


def test_resume_continues_from_that_step_and_stage_with_an_extended_curriculum(
    terminated: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder = terminated["folder"]
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    end = terminated["last"]["updates"] + 4  # past 8: stage 3 (and its landmark loss) stays
    cli_main(
        [
            "fit",
            "--config",
            str(VAEGAN),
            "--model.init_args.stage_boundaries",
            f"[4, 8, {end}]",
            "--trainer.callbacks+=announce.Announce",
            "--ckpt_path",
            "runs/vaegan-smoke/last.ckpt",
            *QUIET,
        ]
    )
    starts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("start")]
    start = position(starts[0])
    assert start == terminated["last"]
    assert saved(folder / "runs" / "vaegan-smoke" / "last.ckpt")["updates"] == end
    configs = sorted((folder / "runs" / "vaegan-smoke").glob("version_*/config.yaml"))
    resumed_config = yaml.safe_load(configs[-1].read_text())
    assert resumed_config["model"]["init_args"]["stage_boundaries"] == [4, 8, end]
    note = yaml.safe_load((configs[-1].parent / "resumed_from.json").read_text())
    assert note == {"checkpoint": "runs/vaegan-smoke/last.ckpt", "global_step": start["step"]}


def resume_error(folder: Path, monkeypatch, capsys, config: Path, *args: str) -> str:
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*args[:1], "--config", str(config), *args[1:], *QUIET])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("faceinpaint ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_changing_the_architecture_on_resume_names_the_setting(
    terminated: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args = ["fit", "--model.init_args.latent_dim", "64"]
    err = resume_error(terminated["folder"], monkeypatch, capsys, VAEGAN, *args,
                       "--ckpt_path", "runs/vaegan-smoke/last.ckpt")  # fmt: skip
    assert "latent_dim: checkpoint" in err and "has 32, the config 64" in err


def test_a_boundary_already_passed_cannot_move(
    terminated: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args = ["fit", "--model.init_args.stage_boundaries", "[2, 8, 1000]"]
    err = resume_error(terminated["folder"], monkeypatch, capsys, VAEGAN, *args,
                       "--ckpt_path", "runs/vaegan-smoke/last.ckpt")  # fmt: skip
    assert re.search(r"stage_boundaries: \[4, 8, \d+\] -> \[2, 8, 1000\]", err), err
    assert "past the end of stage 1" in err


def test_a_checkpoint_of_another_kind_names_both(
    terminated: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    err = resume_error(terminated["folder"], monkeypatch, capsys, DCGAN, "test",
                       "--ckpt_path", "runs/vaegan-smoke/last.ckpt")  # fmt: skip
    assert "holds a faceinpaint.lit.vaegan.VAEGANModule" in err
    assert "the config's model is faceinpaint.lit.dcgan.DCGANModule" in err


def smoke_fit(folder: Path, *args: str, config: Path = VAEGAN) -> None:
    """``faceinpaint fit`` of a smoke config (the VAE-GAN's), in-process, in ``folder``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        cli_main(["fit", "--config", str(config), *QUIET, *args])


@pytest.fixture(scope="module")
def stage_2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint in stage 2 (generator update 5 of boundaries 4, 8, 12) of a run whose
    stage 3 has a landmark network."""
    folder = tmp_path_factory.mktemp("stage2")
    smoke_fit(folder, "--trainer.max_steps", "10")
    path = folder / "runs" / "vaegan-smoke" / "last.ckpt"
    assert saved(path)["updates"] == 5 and saved(path)["stage"] == 2
    return path


def resume_copy(checkpoint: Path, folder: Path) -> Path:
    """``checkpoint`` as ``folder``'s runs/vaegan-smoke/last.ckpt, where a resume will write."""
    run = folder / "runs" / "vaegan-smoke"
    run.mkdir(parents=True)
    shutil.copy(checkpoint, run / "last.ckpt")
    return run / "last.ckpt"


@pytest.mark.parametrize(
    ("args", "end"),
    [
        (["--model.init_args.stage_boundaries", "[4, 8, 8]"], 8),  # stage 3 (landmarks) dropped
        (["--model.init_args.weights.landmark", "0"], 12),  # its landmark network dropped
    ],
    ids=["no-stage-3", "landmark-weight-0"],
)
def test_resume_without_the_landmark_network_of_the_checkpoints_run(
    stage_2: Path, tmp_path: Path, args: list[str], end: int
) -> None:
    last = resume_copy(stage_2, tmp_path)
    smoke_fit(tmp_path, *args, "--ckpt_path", str(last))
    assert saved(last)["updates"] == end


def test_extending_the_curriculum_into_stage_3_adds_the_landmark_network(tmp_path: Path) -> None:
    smoke_fit(tmp_path, "--model.init_args.stage_boundaries", "[4, 6, 6]")
    last = tmp_path / "runs" / "vaegan-smoke" / "last.ckpt"
    assert saved(last)["updates"] == 6
    smoke_fit(
        tmp_path, "--model.init_args.stage_boundaries", "[4, 6, 10]", "--ckpt_path", str(last)
    )
    assert saved(last) == {"step": saved(last)["step"], "updates": 10, "stage": 3}


def test_a_larger_max_steps_resumes_a_run_that_max_steps_stopped_mid_epoch(tmp_path: Path) -> None:
    """The DCGAN smoke run has 4 batches (8 optimizer steps) per epoch and max_epochs 2: a run
    stopped at step 6 (mid-epoch 0) and resumed to 12 must reach 12, then 16 at max_epochs."""
    last = tmp_path / "runs" / "dcgan-smoke" / "last.ckpt"
    smoke_fit(tmp_path, "--trainer.max_steps", "6", config=DCGAN)
    assert global_step(last) == 6
    smoke_fit(tmp_path, "--trainer.max_steps", "12", "--ckpt_path", str(last), config=DCGAN)
    assert global_step(last) == 12
    smoke_fit(tmp_path, "--ckpt_path", str(last), config=DCGAN)
    assert global_step(last) == 16


def test_a_stage_cannot_end_before_the_update_the_checkpoint_reached(
    stage_2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    last = resume_copy(stage_2, tmp_path)
    args = ["fit", "--model.init_args.stage_boundaries", "[4, 4, 12]", "--ckpt_path", str(last)]
    err = resume_error(tmp_path, monkeypatch, capsys, VAEGAN, *args)
    assert "at generator update 5, in stage 2: stage 2 can end at update 5 or later, not 4" in err
    assert "past the end" not in err  # update 5 is not past stage 2's end (8)


@pytest.fixture(scope="module")
def stage_3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint at generator update 7 of boundaries 4, 6, 8 (stage 3)."""
    folder = tmp_path_factory.mktemp("stage3")
    smoke_fit(
        folder, "--model.init_args.stage_boundaries", "[4, 6, 8]", "--trainer.max_steps", "22"
    )
    path = folder / "runs" / "vaegan-smoke" / "last.ckpt"
    assert saved(path)["updates"] == 7 and saved(path)["stage"] == 3
    return path


def test_the_curriculum_cannot_end_below_the_update_the_checkpoint_reached(
    stage_3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    last = resume_copy(stage_3, tmp_path)
    args = ["fit", "--model.init_args.stage_boundaries", "[4, 6, 6]", "--ckpt_path", str(last)]
    err = resume_error(tmp_path, monkeypatch, capsys, VAEGAN, *args)
    assert "at generator update 7: training can end at update 7 or later, not 6" in err
    assert global_step(last) == 22


def test_resuming_at_the_end_of_the_curriculum_trains_nothing(
    stage_3: Path, tmp_path: Path
) -> None:
    last = resume_copy(stage_3, tmp_path)
    counters = ("generator_updates", "critic_updates")
    before = {k: torch.load(last, weights_only=True)["vaegan_curriculum"][k] for k in counters}
    smoke_fit(tmp_path, "--model.init_args.stage_boundaries", "[4, 6, 7]", "--ckpt_path", str(last))
    assert global_step(last) == 22
    after = torch.load(last, weights_only=True)["vaegan_curriculum"]
    assert {k: after[k] for k in counters} == before


def test_a_checkpoint_with_former_flat_settings_resumes_and_tests(tmp_path: Path) -> None:
    """A DCGAN run saved before the settings groups (its hparams flat: num_candidates,
    search_lr ...) resumes under today's config and its search runs from it."""
    from faceinpaint.lit.dcgan import FORMER_SEARCH_NAMES

    last = tmp_path / "runs" / "dcgan-smoke" / "last.ckpt"
    smoke_fit(tmp_path, "--trainer.max_steps", "4", config=DCGAN)
    checkpoint = torch.load(last, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    search = hparams.pop("search")  # LightningCLI saved the config's mapping
    names = {field: name for name, field in FORMER_SEARCH_NAMES.items()}
    # fields added since (precision) had no flat name
    hparams |= {names[field]: value for field, value in search.items() if field in names}
    torch.save(checkpoint, last)
    smoke_fit(tmp_path, "--trainer.max_steps", "8", "--ckpt_path", str(last), config=DCGAN)
    assert global_step(last) == 8
    resumed = torch.load(last, weights_only=True)["hyper_parameters"]
    assert resumed["search"] == search and "num_candidates" not in resumed
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        cli_main(["test", "--config", str(DCGAN), *QUIET, "--ckpt_path", str(last)])
