"""``faceinpaint eval`` on a Weights & Biases dashboard: its own run, grouped with training.

The run is opened by :func:`open_eval_run` (``job_type="eval"``; offline unless the user
logged in, synced later with ``wandb sync``) and receives the results table, the per-mask
metrics, the image grids and the bar charts through :func:`log_eval`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faceinpaint.lit.wandb_run import CHECKPOINT_KEY, wandb_offline_unless_logged_in
from faceinpaint.metrics import METRICS

DEFAULT_PROJECT = "faceinpaint"
log = logging.getLogger(__name__)


def training_runs(checkpoints: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The wandb runs that trained the given checkpoint dicts (those that logged to wandb)."""
    runs = [checkpoint.get(CHECKPOINT_KEY) for checkpoint in checkpoints]
    return [run for run in runs if run]


def open_eval_run(
    protocol: str, out: str | Path, trained_by: Sequence[Mapping[str, Any]], config: dict[str, Any]
) -> Any:
    """A new wandb run for one evaluation: ``job_type="eval"``, in the project of the first
    training run (else ``faceinpaint``) and grouped with it (its group, else its name), with
    ``config`` and the training runs' ids in ``wandb.config``. Files go under ``out``.

    An online run uses the model artifact of each training run that logged its checkpoints
    (``log_model``), so the dashboard's lineage leads from the evaluation to the checkpoints;
    an offline run has no artifacts to use and skips that."""
    import wandb

    wandb_offline_unless_logged_in()
    first = trained_by[0] if trained_by else {}
    Path(out).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=first.get("project") or DEFAULT_PROJECT,
        group=first.get("group") or first.get("name"),
        job_type="eval",
        name=f"eval-{protocol}",
        dir=str(out),
        config={**config, "training_runs": [run.get("id") for run in trained_by]},
        reinit="create_new",
    )
    if not run.offline:
        for trained in trained_by:
            if trained.get("model_artifact"):
                use_model_artifact(run, trained)
    return run


def use_model_artifact(run: Any, trained: Mapping[str, Any]) -> None:
    """Mark the newest version (``latest``) of a training run's model artifact as the eval
    run's input; a warning where the artifact cannot be had (training stopped before
    logging it)."""
    import wandb

    owner = [part for part in (trained.get("entity"), trained.get("project")) if part]
    name = "/".join([*owner, f"{trained['model_artifact']}:latest"])
    try:
        run.use_artifact(name)
    except wandb.errors.CommError as err:
        log.warning("eval run not linked to the model artifact %s: %s", name, err)


def table_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Registered metric names present in ``rows``, in ``METRICS`` (table) order."""
    return [name for name in METRICS if any(name in row["metrics"] for row in rows)]


def log_eval(
    run: Any,
    protocol: str,
    rows: Sequence[Mapping[str, Any]],
    images: Mapping[str, str | Path],
) -> None:
    """Log the rows as a ``wandb.Table`` (``eval/<protocol>``), each row's metric means as
    ``<protocol>/<mask>/<method>/<metric>`` in the run summary, and ``images`` (key -> PNG)."""
    import wandb

    keys = table_columns(rows)
    columns = ["protocol", "mask", "method", "checkpoint", "n", "mask_hash"]
    columns += [f"{key}_{part}" for key in keys for part in ("mean", "ci95", "max")]
    data = []
    for row in rows:
        values = [row["protocol"], row["mask"], row["method"], row.get("checkpoint"), row["n"]]
        values.append(row["mask_hash"])
        for key in keys:
            stat = row["metrics"].get(key, {})
            values += [stat.get("mean", stat.get("value")), stat.get("ci95"), stat.get("max")]
        data.append(values)
    run.log({f"eval/{protocol}": wandb.Table(columns=columns, data=data)})
    for row in rows:
        for key, stat in row["metrics"].items():
            name = f"{protocol}/{row['mask']}/{row['method']}/{key}"
            run.summary[name] = stat.get("mean", stat.get("value"))
    run.log({key: wandb.Image(str(path)) for key, path in images.items()})
