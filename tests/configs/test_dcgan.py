"""The thesis configs run the thesis's method: landmark term on, in the landmark network's frame,
with a no-landmark ablation that differs in nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FRAME = ("image_size", "crop_center", "crop_size")
DATA_DEFAULTS = {"crop_center": [0.5, 0.54], "crop_size": 0.61}  # the DataModule's


def _load(relative: str) -> dict:
    return yaml.safe_load((CONFIGS / relative).read_text())


@pytest.mark.parametrize(
    "method, landmarks",
    [
        ("dcgan/celeba64.yaml", "landmarks/celeba-64.yaml"),
        ("dcgan/celeba-half.yaml", "landmarks/celeba-half-64-fast.yaml"),
    ],
)
def test_thesis_config_uses_the_landmark_net_trained_in_its_frame(method, landmarks):
    search = _load(method)["model"]["init_args"]
    assert search["search"]["landmark_weight"] > 0 and search["landmark_candidates"] == "masked"
    net = _load(landmarks)
    (checkpoint,) = [c for c in net["trainer"]["callbacks"] if "ModelCheckpoint" in c["class_path"]]
    logger = net["trainer"]["logger"]["init_args"]  # faceinpaint's checkpoints: runs/<name>/
    dirpath = checkpoint["init_args"].get("dirpath", f"{logger['save_dir']}/{logger['name']}")
    assert search["landmark_checkpoint"] == f"{dirpath}/last.ckpt"
    method_data = DATA_DEFAULTS | _load(method)["data"]
    net_data = DATA_DEFAULTS | net["data"]
    assert {k: method_data[k] for k in FRAME} == {k: net_data[k] for k in FRAME}
    assert method_data["layout"] == net_data["layout"]


@pytest.mark.parametrize("name", ["celeba64", "celeba-half"])
def test_no_landmark_ablation_differs_only_in_the_landmark_term(name):
    full, ablation = _load(f"dcgan/{name}.yaml"), _load(f"dcgan/{name}-no-landmark.yaml")
    assert ablation["model"]["init_args"]["search"]["landmark_weight"] == 0
    for config in (full, ablation):
        config["model"]["init_args"]["search"].pop("landmark_weight")
        for key in (
            "landmark_loss",
            "landmark_checkpoint",
            "landmark_candidates",
        ):
            config["model"]["init_args"].pop(key, None)
        config["trainer"]["logger"]["init_args"].pop("name")
    assert full == ablation


WITH_LANDMARK_NET = sorted(
    p.name
    for p in (CONFIGS / "dcgan").glob("*celeba*.yaml")
    if yaml.safe_load(p.read_text())["model"]["init_args"].get("landmark_checkpoint")
)


@pytest.mark.parametrize("method", WITH_LANDMARK_NET)
def test_thesis_configs_name_the_landmark_net_the_bench_times(method):
    """The net whose search cost docs/RESULTS.md, "Landmark term cost in the search", measured (<= 1.3x a plain iteration)."""
    from faceinpaint.bench.sizes import THESIS_LANDMARK_NET

    run = Path(_load(f"dcgan/{method}")["model"]["init_args"]["landmark_checkpoint"]).parent.name
    (net,) = [
        config
        for config in (_load(f"landmarks/{p.name}") for p in (CONFIGS / "landmarks").glob("*.yaml"))
        if config["trainer"]["logger"]["init_args"]["name"] == run
    ]
    init = net["model"]["init_args"]
    assert {k: init[k] for k in THESIS_LANDMARK_NET} == THESIS_LANDMARK_NET


@pytest.mark.parametrize(
    "name", ["celeba64", "celeba-half", "celeba64-no-landmark", "celeba-half-no-landmark"]
)
def test_thesis_configs_train_the_thesis_generator_at_its_learning_rate(name):
    init = _load(f"dcgan/{name}.yaml")["model"]["init_args"]
    assert init["generator_activation"] == "leaky_relu"
    assert init["lr"] == 1e-3


@pytest.mark.parametrize("name", ["celeba-half-cpu", "celeba-half-cpu-fast", "demo", "smoke"])
def test_cpu_configs_keep_the_dcgan_settings_their_weights_were_trained_with(name):
    init = _load(f"dcgan/{name}.yaml")["model"]["init_args"]
    assert init.get("generator_activation", "relu") == "relu"
    assert init["lr"] == 2e-4


def test_the_search_group_parses_from_the_config_and_the_command_line(capsys):
    """LightningCLI renders ``search`` as a group: the config's fields, the command line's
    dotted ones on top, the rest at SearchSettings' defaults."""
    from faceinpaint.cli import cli_main

    smoke = str(CONFIGS / "dcgan" / "smoke.yaml")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(
            ["fit", "--config", smoke, "--model.init_args.search.candidates", "3", "--print_config"]
        )
    assert exit_info.value.code in (0, None)
    search = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["search"]
    assert search == {
        "candidates": 3,
        "iterations": 10,
        "lr": 0.01,
        "betas": [0.9, 0.999],
        "prior_weight": 0.003,
        "context_window": 7,
        "landmark_weight": 0.0,
        "poisson_iterations": 0,
        "holdout": 0.0,
        "discrepancy": 0.0,
        "discrepancy_curve": [],
        "seed": 0,
        "encoder_perturbation": 0.1,
        "precision": "fp32",
    }


@pytest.mark.parametrize("path", sorted((CONFIGS / "dcgan").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_discrepancy_stop_is_on_in_the_fast_config_only(path):
    from faceinpaint.latent_search import SearchSettings

    search = SearchSettings(**_load(f"dcgan/{path.name}")["model"]["init_args"].get("search", {}))
    assert search.stops_by_discrepancy == (path.stem == "celeba-half-cpu-fast")
    assert search.holdout == 0.0
