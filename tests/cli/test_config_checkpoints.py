"""Every config's checkpoints land in runs/<name>/, so `--ckpt_path runs/<name>/last.ckpt` resumes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
OURS = "faceinpaint.lit.checkpoint.ModelCheckpoint"


def trainer_section(config: Path) -> dict:
    return yaml.safe_load(config.read_text()).get("trainer") or {}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_training_configs_checkpoint_into_runs_name(config: Path) -> None:
    trainer = trainer_section(config)
    if "logger" not in trainer and "callbacks" not in trainer:
        return  # data, eval and cluster-size configs train nothing themselves
    checkpoints = [c for c in trainer.get("callbacks") or [] if c["class_path"] == OURS]
    assert len(checkpoints) == 1, f"{config} needs one {OURS}"
    dirpath = (checkpoints[0].get("init_args") or {}).get("dirpath")
    logger = (trainer.get("logger") or {}).get("init_args") or {}
    # no dirpath: the callback uses <logger save_dir>/<logger name>, the resume path
    assert dirpath is None or dirpath == f"{logger.get('save_dir')}/{logger.get('name')}"
