"""Every config keeps running: each ``configs/**/*.yaml`` for a couple of steps on the CPU.

As lightning-hydra-template runs each experiment with ``fast_dev_run``: the paper-scale and
celeba configs are run as a user runs them (``faceinpaint fit --config ...``), with tiny
overrides only (network widths, a few faces in the config's own data layout, two batches, the
CPU, one device). The training configs run in the order their checkpoints need each other
(landmark nets, then the DCGANs, their encoders, the encoder-started DCGANs, the VAE-GANs), each
reading the ``runs/<name>/last.ckpt`` the config it names wrote; a config that names a setting or
class that does not exist, or a checkpoint no config writes, fails here. Eval configs run with
the classical fills on the same faces, data configs through ``prepare``, DDP overlays on top of
the method config they go with.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from faceinpaint.cli import cli_main
from faceinpaint.data.synthetic import render_face

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
# configs/<kind>/ of every declared module (a method, the landmark network, the latent encoder)
OTHERS = {"data", "ddp", "eval"}  # data preparation, DDP overlays, evaluation protocols
TRAINING = sorted(path for path in CONFIGS.glob("*/*.yaml") if path.parent.name not in OTHERS)
FACES = 12  # per data root: 8 train, 4 val/test

# Per model class: the settings that shrink it; everything else stays as the config says.
TINY_MODEL = {
    "VAEGANModule": {
        "latent_dim": 8,
        "base_channels": 4,
        "max_channels": 8,
        "critic_base_channels": 4,
        "critic_max_channels": 8,
        "vgg_weights": "random",
    },
    "DCGANModule": {
        "latent_dim": 8,
        "ngf": 4,
        "ndf": 4,
        "num_samples": 4,
        "search.candidates": 2,  # a settings group's field, by its dotted name
        "search.iterations": 2,
        "val_candidates": 2,
        "val_iterations": 2,
    },
    "LatentEncoderModule": {"base_channels": 4, "max_channels": 8},
    "ContextEncoderModule": {
        "base_channels": 4,
        "max_channels": 8,
        "bottleneck": 8,
        "discriminator_channels": 4,
    },
    "LandmarkModule": {},  # widths: as many as the config's, 4 channels each
}
TINY_TRAINER = [
    "--trainer.accelerator", "cpu",
    "--trainer.devices", "1",
    "--trainer.num_nodes", "1",
    "--trainer.max_epochs", "1",
    "--trainer.max_steps", "-1",
    "--trainer.limit_train_batches", "2",
    "--trainer.limit_val_batches", "1",
    "--trainer.limit_test_batches", "1",
    "--trainer.val_check_interval", "1.0",
    "--trainer.check_val_every_n_epoch", "1",
    "--trainer.num_sanity_val_steps", "0",
    "--trainer.log_every_n_steps", "1",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip
TINY_DATA = [
    "--data.batch_size", "4",
    "--data.eval_batch_size", "4",
    "--data.num_workers", "0",
    "--data.cache_workers", "1",
]  # fmt: skip


def _write_faces(folder: Path, names: list[str], size: tuple[int, int]) -> None:
    folder.mkdir(parents=True)
    for seed, name in enumerate(names):
        face = render_face(seed, size=max(size))[0]  # (S, S, 3) uint8
        Image.fromarray(np.ascontiguousarray(face[: size[1], : size[0]])).save(folder / name)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A few procedural faces in each layout a config reads: ``folder`` (numbered PNGs, as
    celeba-half), ``celeba`` (img_align_celeba/ + list_eval_partition.txt) and ``celeba-wild``
    (img_celeba/ + list_bbox_celeba.txt), in the same root as CelebA keeps them."""
    base = tmp_path_factory.mktemp("data")
    folder = base / "folder"
    _write_faces(folder, [f"{i:06d}.png" for i in range(1, FACES + 1)], (89, 109))
    celeba = base / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, FACES + 1)]
    _write_faces(celeba / "img_align_celeba", names, (178, 218))
    _write_faces(celeba / "img_celeba", names, (160, 160))
    codes = [0] * 8 + [1] * 2 + [2] * 2
    (celeba / "list_eval_partition.txt").write_text(
        "".join(f"{name} {code}\n" for name, code in zip(names, codes, strict=True))
    )
    boxes = [str(FACES), "image_id x_1 y_1 width height"]
    boxes += [f"{name} 30 30 100 100" for name in names]
    (celeba / "list_bbox_celeba.txt").write_text("\n".join(boxes) + "\n")
    return {"folder": folder, "celeba": celeba, "celeba-wild": celeba, "auto": celeba}


def _data_overrides(sections: dict, roots: dict[str, Path]) -> list[str]:
    data = sections.get("data") or {}
    if "root" not in data:
        return ["--data.synthetic_size", str(FACES), *TINY_DATA]
    layout = data.get("layout", "auto")
    overrides = ["--data.root", str(roots[layout]), *TINY_DATA]
    if layout == "folder":
        overrides += ["--data.splits", "{train: '1-8', val: '9-12', test: '9-12'}"]
    return overrides


def _model_overrides(sections: dict) -> list[str]:
    model = sections.get("model") or {}
    name = model["class_path"].rsplit(".", 1)[-1]
    settings = dict(TINY_MODEL[name])
    if name == "LandmarkModule":
        widths = model.get("init_args", {}).get("widths", [16, 32, 48, 64, 96])
        settings["widths"] = [4] * len(widths)
    return [
        item
        for key, value in settings.items()
        for item in (
            f"--model.init_args.{key}",
            value if isinstance(value, str) else json.dumps(value),
        )
    ]


def _checkpoints_named(sections: dict) -> list[str]:
    """The ``runs/...`` checkpoints a config's model reads (``*_checkpoint`` settings)."""
    init_args = (sections.get("model") or {}).get("init_args") or {}
    return [
        value
        for key, value in init_args.items()
        if key.endswith("_checkpoint") and isinstance(value, str) and value.startswith("runs/")
    ]


def _fit_args(config: Path, roots: dict[str, Path], extra: tuple[Path, ...] = ()) -> list[str]:
    sections = yaml.safe_load(config.read_text())
    args = ["fit", "--config", str(config)]
    for overlay in extra:
        args += ["--config", str(overlay)]
    return args + _model_overrides(sections) + _data_overrides(sections, roots) + TINY_TRAINER


def _fit(config: Path, roots: dict[str, Path]) -> None:
    sections = yaml.safe_load(config.read_text())
    if (sections.get("data") or {}).get("landmarks") == "required":  # as the config's header says
        cli_main(
            ["landmarks", "annotate", "--config", str(config), *_data_overrides(sections, roots)]
        )
    try:
        cli_main(_fit_args(config, roots))
    finally:  # one process per fit for a user; here the next fit must not join this wandb run
        import wandb

        wandb.finish()


@pytest.mark.slow
def test_every_training_config_runs_in_the_order_its_checkpoints_need(
    roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # runs/ lands here, as in a user's checkout
    monkeypatch.setenv("WANDB_MODE", "offline")  # the GPU configs log to wandb, offline here
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    (tmp_path / "faceinpaint").symlink_to(REPO / "faceinpaint")  # the shipped weights' paths
    pending = {path: _checkpoints_named(yaml.safe_load(path.read_text())) for path in TRAINING}
    ran: list[str] = []
    while pending:
        ready = [p for p, needs in pending.items() if all((tmp_path / n).is_file() for n in needs)]
        if not ready:
            missing = {p.relative_to(REPO).as_posix(): needs for p, needs in pending.items()}
            pytest.fail(f"no config writes the checkpoints these configs read: {missing}")
        for path in ready:
            before = set((tmp_path / "runs").rglob("last.ckpt"))
            _fit(path, roots)
            name = path.relative_to(REPO).as_posix()
            written = set((tmp_path / "runs").rglob("last.ckpt")) - before
            assert len(written) == 1, (
                f"{name} wrote {len(written)} new last.ckpt (its own run folder?)"
            )
            ran.append(name)
            del pending[path]
    assert len(ran) == len(TRAINING)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overlay", "method"),
    [
        ("ddp/cpu-2.yaml", "vaegan/smoke.yaml"),
        ("ddp/vaegan.yaml", "vaegan/smoke.yaml"),
        ("ddp/dcgan.yaml", "dcgan/smoke.yaml"),
    ],
)
def test_every_ddp_overlay_stacks_on_its_method_config(
    overlay: str, method: str, roots: dict[str, Path], tmp_path: Path
) -> None:
    """In a process of its own, as a user runs it: DDP leaves its rendezvous port and process
    group behind in the process that ran it."""
    args = _fit_args(CONFIGS / method, roots, extra=(CONFIGS / overlay,))
    env = os.environ | {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "faceinpaint", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "runs").rglob("last.ckpt"))


def test_the_ddp_overlays_are_all_covered() -> None:
    """A new overlay must be added to the test above (slurm-2x4 is covered by the sbatch test)."""
    overlays = {p.name for p in (CONFIGS / "ddp").glob("*.yaml")}
    assert overlays == {"cpu-2.yaml", "vaegan.yaml", "dcgan.yaml", "slurm-2x4.yaml"}


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted((CONFIGS / "eval").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_eval_config_scores_the_classical_fills(
    config: Path, roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sections = yaml.safe_load(config.read_text())
    if "models" in sections:  # configs/eval/demo.yaml: the demo's models, run by its own tests
        config = tmp_path / config.name
        config.write_text(yaml.safe_dump({k: v for k, v in sections.items() if k != "models"}))
    # a sampled protocol draws its sample from the tiny split's few faces
    sample = ["--protocol.sample", "3"] if sections["protocol"].get("sample") else []
    rows = cli_main(
        ["eval", "--config", str(config), "--limit", "2", "--baselines", "[mean]"]
        + ["--out", str(tmp_path / "eval")]
        + _data_overrides(sections, roots)
        + sample
    )
    assert rows and all(row["method"] == "mean" and row["n"] >= 1 for row in rows)


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_data_config_prepares(
    config: Path, roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sections = yaml.safe_load(config.read_text())
    cli_main(["prepare", "--config", str(config), *_data_overrides(sections, roots)])


def test_every_config_is_run_by_one_of_these_tests() -> None:
    """Training configs sit in configs/<kind>/ of the class they build; the rest are the
    folders above, each run by its own test here."""
    from faceinpaint.lit.method import import_class
    from faceinpaint.lit.registry import declared

    for path in TRAINING:
        built = import_class(yaml.safe_load(path.read_text())["model"]["class_path"])
        assert built is declared().get(path.parent.name), (
            f"{path.relative_to(CONFIGS)} builds {built.__name__}, not the "
            f"{path.parent.name!r} kind (configs/<kind>/ holds its class's configs)"
        )
    assert {p.parent.name for p in CONFIGS.rglob("*.yaml")} - set(declared()) == OTHERS
    assert all(re.fullmatch(r"[a-z0-9-]+\.yaml", p.name) for p in CONFIGS.rglob("*.yaml"))
