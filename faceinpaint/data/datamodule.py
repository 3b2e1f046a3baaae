"""The one CelebA DataModule both methods train and evaluate on.

Sources: CelebA's official layout (aligned, or in the wild cropped around its face boxes),
any folder of faces with split rules, or (no ``root``) the embedded procedural faces. Every
split is decoded once into a cached uint8 array; workers only slice it. Everything per-pixel
(conversion to [-1, 1], flip, the unaligned augmentation, masks) runs in
``on_after_batch_transfer`` on the batch's device.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from faceinpaint.batch import IMAGE, INDEX, LANDMARKS, LANDMARKS_FOUND, MASK
from faceinpaint.data import cache as cache_lib
from faceinpaint.data.cache import CachedSplit, Crop
from faceinpaint.data.masks import MaskSpec, as_mask_spec, make_masks
from faceinpaint.data.provenance import (
    DATAMODULE_STATE_KEY,
    FRAME_KEY,
    TRAINING_IMAGES_KEY,
    FaceFrame,
    ImageSet,
)
from faceinpaint.data.sampling import UnpaddedDistributedSampler
from faceinpaint.data.sources import (
    Layout,
    boxes_digest,
    celeba_face_boxes,
    face_box_crops,
    resolve_splits,
)
from faceinpaint.data.workers import worker_init
from faceinpaint.landmarks.ibug import FLIP_PERMUTATION

log = logging.getLogger(__name__)

Stage = Literal["train", "val", "test", "predict"]
SYNTHETIC_VERSION = 1
SYNTHETIC_FRACTIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


class FaceDataset(Dataset):
    """Faces of one cached split; ``__getitems__`` slices a whole batch from the memory map at once."""

    def __init__(self, split: CachedSplit, landmarks: tuple[np.ndarray, np.ndarray] | None):
        self.split = split
        self.landmarks = landmarks
        self._images: np.ndarray | None = None  # opened lazily, once per worker process

    def __len__(self) -> int:
        return len(self.split)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}

    def _array(self) -> np.ndarray:
        if self._images is None:
            self._images = self.split.images
        return self._images

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        order = np.asarray(indices, dtype=np.int64)
        images = torch.from_numpy(np.ascontiguousarray(self._array()[order]))  # (B,S,S,3) uint8
        batch = {IMAGE: images.permute(0, 3, 1, 2), INDEX: torch.from_numpy(order)}
        if self.landmarks is not None:
            batch[LANDMARKS] = torch.from_numpy(self.landmarks[0][order])  # (B,68,2)
            batch[LANDMARKS_FOUND] = torch.from_numpy(self.landmarks[1][order])  # (B,)
        return batch


def _collate(batch: dict[str, Tensor] | list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """``__getitems__`` already returns a batch; a single ``__getitem__`` batch is concatenated."""
    if isinstance(batch, dict):
        return batch
    return {key: torch.cat([b[key] for b in batch]) for key in batch[0]}


class FaceDataModule(pl.LightningDataModule):
    """CelebA-style faces in the project's batch contract (see ``faceinpaint.batch``)."""

    def __init__(
        self,
        root: str | None = None,
        layout: Layout = "auto",
        splits: dict[str, str] | None = None,
        image_size: int = 64,
        crop_center: tuple[float, float] = (0.5, 0.54),
        crop_size: float = 0.61,
        box_scale: float = 1.0,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        flip: bool = True,
        unaligned: bool = False,
        rotation: float = 15.0,
        scale: tuple[float, float] = (0.9, 1.1),
        shift: float = 0.06,
        train_mask: MaskSpec = MaskSpec(kind="center"),
        val_mask: MaskSpec = MaskSpec(kind="center"),
        test_mask: MaskSpec = MaskSpec(kind="center"),
        mask_seed: int = 0,
        synthetic_size: int = 640,
        landmarks: Literal["auto", "required", "off"] = "auto",
        predict_split: str = "test",
        cache_dir: str | None = None,
        cache_workers: int = 2,
        skip_corrupt: bool = False,
        min_crop_side: int = 16,
    ):
        """
        Args:
            root: dataset folder; None uses the embedded procedural faces (a stand-in, not CelebA).
            layout: ``celeba`` (img_align_celeba/ + list_eval_partition.txt), ``celeba-wild``
                (img_celeba/ + list_eval_partition.txt + list_bbox_celeba.txt: unaligned faces
                cropped around their boxes), ``folder``, or ``auto`` (celeba or folder).
            splits: folder layout only: split name -> rule, e.g. ``{train: "1-8000", val: "8001-9000"}``
                (numeric file names), ``"0%-90%"`` (slice of the sorted list) or ``"all"``.
            image_size: side of the square faces served (64 latent search, 128 VAE-GAN).
            crop_center: face-centred crop centre as fractions of the source width and height.
            crop_size: crop side as a fraction of the source width (ignored by the embedded set
                and celeba-wild).
            box_scale: celeba-wild only: crop side / the face box's longer side (square around
                the box's centre, shifted inside the image where it would leave it).
            batch_size: training batch size; ``eval_batch_size`` for val/test/predict (default: same).
            num_workers: loader processes (0 loads in the main process).
            flip: random horizontal flips in training (landmarks mirrored with the iBUG permutation).
            unaligned: random rotation (±``rotation`` degrees), ``scale`` and ``shift`` (fraction of the
                side) in training, with kornia on the batch's device: the paper's unaligned setting.
            train_mask / val_mask / test_mask: the hole masks drawn for each stage.
            mask_seed: masks are a function of (seed, sample index); training adds the epoch.
            synthetic_size: number of embedded faces (split 80/10/10).
            landmarks: ``auto`` serves them when known, ``required`` errors when a split has none.
            predict_split: the split ``predict`` runs on.
            cache_dir: where decoded splits are cached (default ``$FACEINPAINT_CACHE`` or ~/.cache/faceinpaint).
            cache_workers: processes decoding images while a cache is built.
            skip_corrupt: skip unreadable images (counted in the log) instead of stopping.
            min_crop_side: an image whose face crop is smaller than this many pixels (a 2x2
                image blown up to 64 px) is an error when the cache is built; 0 = no check.
        """
        super().__init__()
        # saved as plain dicts: a checkpoint then loads with torch.load(weights_only=True), as
        # Lightning's `ckpt_path` (resume, test) does
        train_mask, val_mask, test_mask = (
            asdict(as_mask_spec(m)) for m in (train_mask, val_mask, test_mask)
        )
        self.save_hyperparameters()
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}")
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError(
                f"batch_size and eval_batch_size must be at least 1, got {batch_size} and "
                f"{eval_batch_size}"
            )
        if not 0 < crop_size <= 2:
            raise ValueError(f"crop_size is a fraction of the image width, got {crop_size}")
        if not 0 < box_scale <= 4:
            raise ValueError(f"box_scale is the crop side / the face box's side, got {box_scale}")
        self.root = Path(root).expanduser() if root else None
        self.layout = layout
        self.split_rules = dict(splits) if splits else None
        self.image_size = image_size
        self.crop = Crop(
            float(crop_center[0]), float(crop_center[1]), float(crop_size), float(min_crop_side)
        )
        self.box_scale = float(box_scale)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.flip = flip
        self.unaligned = unaligned
        self.rotation, self.scale, self.shift = rotation, tuple(scale), shift
        self.masks = {
            "train": as_mask_spec(train_mask),
            "val": as_mask_spec(val_mask),
            "test": as_mask_spec(test_mask),
        }
        self.masks["predict"] = self.masks["test"]
        self.mask_seed = mask_seed
        self.synthetic_size = synthetic_size
        self.landmarks_mode = landmarks
        self.predict_split = predict_split
        self.cache_dir = (
            Path(cache_dir).expanduser() if cache_dir else cache_lib.default_cache_dir()
        )
        self.cache_workers = cache_workers
        self.skip_corrupt = skip_corrupt
        self._files: dict[str, list[Path]] | None = None
        self._training_images: ImageSet | None = None
        self._used_layout: str | None = None
        self._cached: dict[str, CachedSplit] = {}
        self._datasets: dict[str, FaceDataset] = {}
        self._affine = None

    # ----------------------------------------------------------------- sources and cache
    @property
    def is_synthetic(self) -> bool:
        return self.root is None

    def split_names(self) -> list[str]:
        if self.is_synthetic:
            return list(SYNTHETIC_FRACTIONS)
        return list(self._split_files())

    def _split_files(self) -> dict[str, list[Path]]:
        if self._files is None:
            assert self.root is not None
            self._used_layout, files = resolve_splits(self.root, self.layout, self.split_rules)
            for name, paths in files.items():
                if not paths:
                    raise ValueError(
                        f"split {name!r} of {self.root} is empty (rule {self.split_rules and self.split_rules.get(name)!r})"
                    )
            train = set(files.get("train", []))
            for name, paths in files.items():
                if name != "train" and train.intersection(paths):
                    raise ValueError(
                        f"splits 'train' and {name!r} share images; fix the split rules"
                    )
            self._files = files
        return self._files

    def cached_split(self, split: str) -> CachedSplit:
        """The decoded split, building its cache entry first when missing or stale."""
        if split in self._cached:
            return self._cached[split]
        if self.is_synthetic:
            entry = self._synthetic_split(split)
        else:
            files = self._split_files()
            if split not in files:
                raise ValueError(
                    f"no {split!r} split in {self.root}; splits are {sorted(files)}"
                    + ("" if self._used_layout == "celeba" else " (add it to `splits`)")
                )
            crops: Crop | list = self.crop
            payload = {
                "version": cache_lib.CACHE_VERSION,
                "layout": self._used_layout,
                "root": str(self.root.resolve()),
                "split": split,
                "files": cache_lib.file_fingerprint(files[split]),
                "crop": [self.crop.center_x, self.crop.center_y, self.crop.size],
                "size": self.image_size,
                "skip_corrupt": self.skip_corrupt,
            }
            if self._used_layout == "celeba-wild":
                crops = face_box_crops(files[split], celeba_face_boxes(self.root), self.box_scale)
                payload["crop"] = {"face_boxes": boxes_digest(crops)}
            directory = (
                self.cache_dir / f"{split}-{self.image_size}px-{cache_lib.cache_key(payload)}"
            )
            entry = cache_lib.open_entry(directory)
            if entry is None:
                log.info("building cache %s (%d images)", directory, len(files[split]))
                entry = cache_lib.build_from_files(
                    directory,
                    files[split],
                    crops,
                    self.image_size,
                    payload,
                    workers=self.cache_workers,
                    skip_corrupt=self.skip_corrupt,
                )
        self._cached[split] = entry
        return entry

    def _synthetic_split(self, split: str) -> CachedSplit:
        if split not in SYNTHETIC_FRACTIONS:
            raise ValueError(
                f"the embedded set has splits {list(SYNTHETIC_FRACTIONS)}, not {split!r}"
            )
        lo, hi = SYNTHETIC_FRACTIONS[split]
        seeds = list(range(round(lo * self.synthetic_size), round(hi * self.synthetic_size)))
        if not seeds:
            raise ValueError(
                f"synthetic_size={self.synthetic_size} leaves the {split!r} split empty"
            )
        payload = {
            "version": cache_lib.CACHE_VERSION,
            "synthetic": SYNTHETIC_VERSION,
            "split": split,
            "seeds": [seeds[0], seeds[-1]],
            "size": self.image_size,
        }
        directory = (
            self.cache_dir / f"synthetic-{split}-{self.image_size}px-{cache_lib.cache_key(payload)}"
        )
        entry = cache_lib.open_entry(directory)
        if entry is None:
            from faceinpaint.data.synthetic import render_faces

            entry = cache_lib.build_from_arrays(
                directory,
                lambda: render_faces(seeds, self.image_size),
                [f"synthetic-{s:06d}" for s in seeds],
                payload,
            )
        return entry

    def image_names(self, split: str) -> list[str]:
        """The file names (embedded: ``synthetic-<seed>``) of a split, in order, without decoding."""
        if self.is_synthetic:
            if split not in SYNTHETIC_FRACTIONS:
                raise ValueError(
                    f"the embedded set has splits {list(SYNTHETIC_FRACTIONS)}, not {split!r}"
                )
            lo, hi = SYNTHETIC_FRACTIONS[split]
            seeds = range(round(lo * self.synthetic_size), round(hi * self.synthetic_size))
            return [f"synthetic-{s:06d}" for s in seeds]
        files = self._split_files()
        if split not in files:
            raise ValueError(f"no {split!r} split in {self.root}; splits are {sorted(files)}")
        return [path.name for path in files[split]]

    def training_images(self) -> ImageSet:
        """The identities of the ``train`` split's faces (see ``faceinpaint.data.provenance``)."""
        if self._training_images is None:
            names = self.image_names("train")
            source = (
                "embedded faces" if self.is_synthetic else f"{self.root} ({self.layout} layout)"
            )
            self._training_images = ImageSet.from_names(
                names, f"train split of {source}, {len(names)} images"
            )
        return self._training_images

    @property
    def frame(self) -> FaceFrame:
        """How the served faces are cut and sized (what a network trained on them expects)."""
        return face_frame(self.hparams)

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: the frame, and the training images' identities so that
        evaluation can refuse to score them (``faceinpaint.data.provenance``)."""
        state: dict[str, Any] = {FRAME_KEY: self.frame.state()}
        if self.is_synthetic or "train" in self._split_files():
            state[TRAINING_IMAGES_KEY] = self.training_images().state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A checkpoint restored onto this data (resume, or test / validate / predict with
        ``ckpt_path``) must have been trained on the same frame."""
        if FRAME_KEY in state_dict:
            learned = FaceFrame.from_state(state_dict[FRAME_KEY])
            if learned != self.frame:
                raise ValueError(
                    f"the checkpoint was trained on faces of {learned}, but this data serves "
                    f"faces of {self.frame}: set the data's crop and size to the checkpoint's "
                    "(`faceinpaint eval --checkpoint_frame true` does it for a protocol)"
                )

    def prepare_data(self) -> None:
        """Build every split's cache (runs on one process per node)."""
        for split in self.split_names():
            self.cached_split(split)

    def setup(self, stage: str | None = None) -> None:
        wanted = {
            "fit": ["train", "val"],
            "validate": ["val"],
            "test": ["test"],
            "predict": [self.predict_split],
            None: self.split_names(),
        }[stage]
        for split in wanted:
            self.dataset(split)

    def dataset(self, split: str) -> FaceDataset:
        if split not in self._datasets:
            entry = self.cached_split(split)
            landmarks = None
            if self.landmarks_mode != "off":
                landmarks = entry.load_landmarks()
                if landmarks is None and self.landmarks_mode == "required":
                    raise FileNotFoundError(
                        f"the {split!r} split has no landmarks ({entry.landmarks_path}); run "
                        "`faceinpaint landmarks annotate --config <this config>` first"
                    )
            self._datasets[split] = FaceDataset(entry, landmarks)
        return self._datasets[split]

    # ----------------------------------------------------------------------- loaders
    def _loader(self, split: str, train: bool) -> DataLoader:
        dataset = self.dataset(split)
        sampler = None
        trainer = self.trainer
        if not train and trainer is not None and trainer.world_size > 1:
            # every evaluated image exactly once over the ranks (Lightning's sampler would pad)
            sampler = UnpaddedDistributedSampler(dataset, trainer.world_size, trainer.global_rank)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            sampler=sampler,
            drop_last=train and len(dataset) >= self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=worker_init if self.num_workers > 0 else None,
            pin_memory=torch.cuda.is_available(),
            collate_fn=_collate,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, train=False)

    # ------------------------------------------------------------ on-device transforms
    def _current_stage(self) -> Stage:
        trainer = self.trainer
        if trainer is None:
            return "test"
        if trainer.training:
            return "train"
        if trainer.sanity_checking or trainer.validating:
            return "val"
        if trainer.predicting:
            return "predict"
        return "test"

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int) -> dict:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return self.prepare_batch(batch, self._current_stage(), epoch)

    def prepare_batch(self, batch: dict[str, Tensor], stage: Stage, epoch: int = 0) -> dict:
        """uint8 faces -> the batch contract, on the batch's device: [-1,1] images, augmentation, masks."""
        batch = dict(batch)
        image = batch[IMAGE]
        if image.dtype == torch.uint8:
            image = image.float().div_(127.5).sub_(1.0)
        landmarks = batch.get(LANDMARKS)
        if stage == "train" and self.flip:
            image, landmarks = self._random_flip(image, landmarks)
        if stage == "train" and self.unaligned:
            image, landmarks = self._random_affine(image, landmarks)
        batch[IMAGE] = image.contiguous()
        if landmarks is not None:
            batch[LANDMARKS] = landmarks
        seed = self.mask_seed + (7919 * (epoch + 1) if stage == "train" else 0)
        batch[MASK] = make_masks(self.masks[stage], batch[INDEX], tuple(image.shape[-2:]), seed)
        return batch

    def _random_flip(self, image: Tensor, landmarks: Tensor | None) -> tuple[Tensor, Tensor | None]:
        flip = torch.rand(image.shape[0], device=image.device) < 0.5  # (B,)
        image = torch.where(flip[:, None, None, None], image.flip(-1), image)
        if landmarks is not None:
            mirrored = landmarks[:, FLIP_PERMUTATION].clone()
            mirrored[..., 0] = (image.shape[-1] - 1) - mirrored[..., 0]
            landmarks = torch.where(flip[:, None, None], mirrored, landmarks)
        return image, landmarks

    def _random_affine(
        self, image: Tensor, landmarks: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        if self._affine is None:
            import kornia.augmentation as K

            self._affine = K.RandomAffine(
                degrees=self.rotation,
                translate=(self.shift, self.shift),
                scale=self.scale,
                padding_mode="reflection",
                p=1.0,
            )
        image = self._affine(image)
        if landmarks is not None:
            matrix = self._affine.transform_matrix.to(landmarks)  # (B,3,3), pixel coordinates
            landmarks = landmarks @ matrix[:, :2, :2].transpose(1, 2) + matrix[:, None, :2, 2]
        return image, landmarks

    # --------------------------------------------------------------------- reporting
    def describe(self) -> dict[str, Any]:
        """Source, layout and split sizes, for logs and the `prepare` command."""
        return {
            "source": "embedded procedural faces" if self.is_synthetic else str(self.root),
            "layout": "synthetic" if self.is_synthetic else (self._used_layout or self.layout),
            "image_size": self.image_size,
            "splits": {s: len(self.cached_split(s)) for s in self.split_names()},
            "cache": str(self.cache_dir),
        }


# ----------------------------------------------------------------- what a checkpoint's data was
def face_frame(settings: Mapping[str, Any]) -> FaceFrame:
    """The frame of a ``FaceDataModule`` from its (saved) hyperparameters, defaults filled in."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(FaceDataModule.__init__).parameters.items()
    }
    value = {**defaults, **dict(settings)}
    size = int(value["image_size"])
    if value["root"] is None:
        return FaceFrame("embedded", size)
    if value["layout"] == "celeba-wild":
        return FaceFrame("face box", size, (round(float(value["box_scale"]), 6),))
    cx, cy = value["crop_center"]
    crop = tuple(round(float(v), 6) for v in (cx, cy, value["crop_size"]))
    return FaceFrame("aligned", size, crop)


def checkpoint_frame(checkpoint: Mapping[str, Any]) -> FaceFrame | None:
    """The frame a checkpoint was trained on, or None when it saved no DataModule settings."""
    settings = checkpoint.get("datamodule_hyper_parameters")
    return face_frame(settings) if settings else None


def checkpoint_training_images(checkpoint: Mapping[str, Any]) -> tuple[ImageSet | None, str]:
    """The images a checkpoint trained on and how they are known.

    From the record the ``FaceDataModule`` writes into every checkpoint; for a checkpoint without
    one, rebuilt from its DataModule settings when its data root is here. Returns
    ``(None, reason)`` when neither works.
    """
    record = (checkpoint.get(DATAMODULE_STATE_KEY) or {}).get(TRAINING_IMAGES_KEY)
    if record is not None:
        return ImageSet.from_state(record), "recorded in the checkpoint"
    settings = checkpoint.get("datamodule_hyper_parameters")
    if not settings:
        return None, "the checkpoint saved no data settings"
    names = set(inspect.signature(FaceDataModule.__init__).parameters) - {"self"}
    try:
        data = FaceDataModule(**{k: v for k, v in settings.items() if k in names})
        return (
            data.training_images(),
            "rebuilt from its data settings (no record: older checkpoint)",
        )
    except (OSError, ValueError) as err:
        return None, f"no record and its data cannot be listed here ({err})"
