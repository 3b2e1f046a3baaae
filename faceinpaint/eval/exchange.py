"""Any method on the project's masks: export a protocol's damaged faces, score outside predictions.

As LaMa's ``gen_mask_dataset.py`` and ``evaluate_predicts.py``: ``faceinpaint masks export``
writes each task of a protocol (mask type x size) as PNG files a method outside this project can
read, and ``faceinpaint score`` (or ``faceinpaint eval --predictions DIR``) scores that method's
outputs with eval's own metrics, intervals, paired table against the classical fills and grids.

Layout of ``DIR`` (one folder per task, the same for export and score)::

    DIR/manifest.jsonl                          one line per face: protocol, mask, image id, ...
    DIR/<protocol>/<mask>/<image id>.png        the damaged input (hole pixels mid-grey, 128)
    DIR/<protocol>/<mask>/<image id>_mask.png   its mask, white (255) = hole, black = known

Which faces: the split's first ones, or the protocol's fixed ``sample`` of them, as eval's.
A prediction is ``<prediction dir>/<protocol>/<mask>/<image id>.png``, RGB at the task's size.
Scoring composites it with the known pixels as eval does for every method (the table's columns),
and scores the file as written too (the ``raw`` columns).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from faceinpaint.batch import IMAGE, INDEX, MASK, from_unit, to_unit
from faceinpaint.data.datamodule import FaceDataModule
from faceinpaint.eval.methods import Method
from faceinpaint.eval.protocols import MaskTask, Protocol, as_protocol, task_mask_hash
from faceinpaint.eval.report import images_to_uint8
from faceinpaint.eval.tasks import task_datamodule
from faceinpaint.io import save_image, write_jsonl

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"


def image_id(name: str) -> str:
    """The id of a face in file names: its source file's stem (``008001``, ``synthetic-16000``)."""
    return Path(name).stem


def task_folder(root: str | Path, task: MaskTask) -> Path:
    return Path(root) / task.protocol / task.mask


def export_masks(
    data: FaceDataModule,
    protocol: Protocol,
    out: str = "outputs/masks",
    limit: int | None = None,
    batch_size: int = 64,
) -> Path:
    """Write every task of the protocol as PNG inputs and masks for outside methods.

    Args:
        protocol: the ``protocol:`` section of a configs/eval/*.yaml.
        out: the folder (see the module docstring for its layout); ``manifest.jsonl`` lists
            every face with its protocol, mask, size, split, seed, index, image id, files and
            the sha256 of its mask, and the task's mask hash (the one eval's rows carry).
        limit: the first ``limit`` faces of the split, or of the protocol's sample (None:
            all), as ``eval --limit``.
        batch_size: faces drawn at once.

    Returns the manifest's path.
    """
    protocol = as_protocol(protocol)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    root = Path(out)
    manifest: list[dict[str, Any]] = []
    for task in protocol.tasks():
        datamodule = task_datamodule(data, task)
        dataset = datamodule.dataset(task.split)
        evaluated = task.indices(len(dataset), limit)
        names = datamodule.cached_split(task.split).names
        folder = task_folder(root, task)
        task_hash = task_mask_hash(task, evaluated)
        for start in range(0, len(evaluated), batch_size):
            indices = evaluated[start : start + batch_size]
            batch = datamodule.prepare_batch(dataset.__getitems__(indices), "test")
            image, mask = batch[IMAGE], batch[MASK]
            damaged = images_to_uint8(to_unit(image * (1.0 - mask)))
            holes = (mask[:, 0] > 0.5).numpy()
            for offset, index in enumerate(batch[INDEX].tolist()):
                face = image_id(names[index])
                mask_png = np.where(holes[offset], 255, 0).astype(np.uint8)
                save_image(damaged[offset], folder / f"{face}.png")
                save_image(mask_png, folder / f"{face}_mask.png")
                manifest.append(
                    {
                        **task.describe(),
                        "index": index,
                        "image_id": face,
                        "input": f"{task.protocol}/{task.mask}/{face}.png",
                        "mask_file": f"{task.protocol}/{task.mask}/{face}_mask.png",
                        "mask_sha256": hashlib.sha256(np.packbits(holes[offset])).hexdigest(),
                        "task_mask_hash": task_hash,
                    }
                )
        log.info("%s: %d faces -> %s", task.mask, len(evaluated), folder)
    return write_jsonl(manifest, root / MANIFEST)


def read_prediction(path: Path, size: int) -> Tensor:
    """(3,S,S) in [-1, 1] from an RGB(A) or grey image file of side ``size``."""
    with Image.open(path) as image:
        if image.size != (size, size):
            raise ValueError(
                f"prediction {path} is {image.size[0]}x{image.size[1]} px; the task's faces are "
                f"{size}x{size}"
            )
        if image.mode in ("I;16", "I", "F"):
            raise ValueError(f"prediction {path} is a {image.mode} image; write 8-bit RGB PNGs")
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return from_unit(torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0)


def predictions_method(predictions: str | Path, task: MaskTask, faces: Mapping[int, str]) -> Method:
    """The outside method whose outputs lie in ``predictions``: one PNG per evaluated face,
    ``faces`` mapping its dataset index to its source file name; every file must be there,
    checked before any scoring."""
    folder = task_folder(predictions, task)
    files = {index: folder / f"{image_id(name)}.png" for index, name in faces.items()}
    missing = [path for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(files)} predictions missing for {task.protocol}/{task.mask}, "
            f"first {missing[0]}; expected <predictions>/{task.protocol}/{task.mask}/<image id>.png "
            "for each face `faceinpaint masks export` wrote"
        )

    def fill(damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        images = [read_prediction(files[i], task.image_size) for i in index.tolist()]
        return torch.stack(images).to(damaged.device, damaged.dtype)

    def parts(damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """(the prediction as written, the prediction): its raw figures score the file as is."""
        prediction = fill(damaged, mask, index)
        return prediction, prediction.clone()

    name = Path(predictions).resolve().name
    return Method(
        name=name,
        fill=fill,
        parts=parts,
        image_size=task.image_size,
        config={"predictions": str(predictions)},
        provenance="outside predictions: their training data is unknown to this project",
    )
