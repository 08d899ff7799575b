"""A Lightning data module over the three datasets, built from a ``data:`` config section."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from conv3t.data.errors import DataError
from conv3t.data.transforms import JESTER_SIZE, UCF101_SIZE, HorizontalFlip

log = logging.getLogger("conv3t.data")

DATASETS = ("synthetic", "jester", "ucf101")

#: Keys accepted by :func:`build_datamodule` (the ``data:`` section of a config), with defaults.
#: ``None`` defaults depend on the dataset, see :class:`VideoDataModule`.
DATA_CONFIG_KEYS: dict[str, Any] = {
    "dataset": None,
    "root": None,
    "annotation_path": None,
    "frames_dir": None,
    "fold": 1,
    "num_frames": None,
    "size": None,
    "frame_stride": 1,
    "pad": "repeat_last",
    "scale": (0.8, 1.0),
    "flip": None,
    "batch_size": 8,
    "num_workers": 0,
    "pin_memory": None,
    "persistent_workers": None,
    "on_error": "raise",
    "test_views": 5,
    "test_crops": 1,
    "num_train": 2000,
    "num_val": 500,
    "num_test": 500,
    "task": "motion",
    "seed": 0,
}

# Synthetic splits use different seeds so that their clips differ.
_VAL_SEED_OFFSET = 1_000_003
_TEST_SEED_OFFSET = 2_000_006


class VideoDataModule(pl.LightningDataModule):
    """Train / val / test loaders for ``"synthetic"``, ``"jester"`` or ``"ucf101"``.

    Args:
        dataset: ``"synthetic"``, ``"jester"`` or ``"ucf101"``.
        root: Jester: dataset folder (frames in ``root/20bn-jester-v1``); UCF101: folder of class
            folders. Unused for synthetic.
        annotation_path: Jester: folder of the ``jester-v1-*.csv`` files (default ``root``);
            UCF101: folder of ``classInd.txt`` and the split lists (required).
        frames_dir: Jester only: frames folder when not ``root/20bn-jester-v1``.
        fold: UCF101 split, 1–3.
        num_frames: ``T`` per clip; default 30 (Jester, UCF101, as in the paper) or 16 (synthetic).
        size: ``(H, W)`` or an int for square; default 150×224 (Jester), 168×224 (UCF101), 64 (synthetic).
        frame_stride, pad, scale: clip sampling and scale jitter, see :class:`~conv3t.data.JesterDataset`.
        flip: random horizontal flip in training, label-aware; default off for Jester and
            synthetic, on for UCF101.
        batch_size, num_workers: DataLoader settings.
        pin_memory: default: True when CUDA is available.
        persistent_workers: default: True when ``num_workers > 0``.
        on_error: ``"raise"`` or ``"skip"`` bad videos (skips are counted; add
            :class:`SkippedSamplesReport` to the Trainer to report them per epoch).
        test_views, test_crops: the test loader's multi-view protocol for Jester / UCF101:
            ``test_views`` temporal clips × ``test_crops`` (1 or 3) spatial crops per video, so
            test batches are ``(B, test_views * test_crops, 3, T, H, W)``; average the logits
            over dim 1. Synthetic test batches are single-view ``(B, 3, T, H, W)``.
        num_train, num_val, num_test, task, seed: synthetic only (see
            :class:`~conv3t.data.SyntheticMotionDataset`); val and test use seeds offset from
            ``seed`` so the splits differ.

    Splits: Jester train / validation / validation (multi-view; the official test split has no
    labels). UCF101 trainlist / testlist / testlist (multi-view) of ``fold``. Train batches are
    ``(B, 3, T, H, W)`` float32 with int64 labels ``(B,)``.
    """

    def __init__(
        self,
        dataset: str,
        *,
        root: str | Path | None = None,
        annotation_path: str | Path | None = None,
        frames_dir: str | Path | None = None,
        fold: int = 1,
        num_frames: int | None = None,
        size: int | Sequence[int] | None = None,
        frame_stride: int = 1,
        pad: str = "repeat_last",
        scale: Sequence[float] = (0.8, 1.0),
        flip: bool | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        on_error: str = "raise",
        test_views: int = 5,
        test_crops: int = 1,
        num_train: int = 2000,
        num_val: int = 500,
        num_test: int = 500,
        task: str = "motion",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(f"data.dataset must be one of {DATASETS}, got {dataset!r}")
        if dataset != "synthetic" and root is None:
            raise ValueError(f"data.root is required for dataset {dataset!r}")
        if dataset == "ucf101" and annotation_path is None:
            raise ValueError("data.annotation_path (folder of classInd.txt and the split lists) is required for ucf101")
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size}, {num_workers}")
        if test_crops not in (1, 3):
            raise ValueError(f"data.test_crops must be 1 or 3, got {test_crops}")
        self.dataset = dataset
        self.root = Path(root) if root is not None else None
        self.annotation_path = Path(annotation_path) if annotation_path is not None else None
        self.frames_dir = Path(frames_dir) if frames_dir is not None else None
        self.fold = fold
        self.num_frames = num_frames or (16 if dataset == "synthetic" else 30)
        default_size = {"synthetic": (64, 64), "jester": JESTER_SIZE, "ucf101": UCF101_SIZE}[dataset]
        if size is None:
            size = default_size
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.frame_stride, self.pad = frame_stride, pad
        self.scale = (float(scale[0]), float(scale[1]))
        self.flip = flip if flip is not None else dataset == "ucf101"
        self.batch_size, self.num_workers = batch_size, num_workers
        self.pin_memory = pin_memory if pin_memory is not None else torch.cuda.is_available()
        self.persistent_workers = persistent_workers if persistent_workers is not None else num_workers > 0
        self.on_error = on_error
        self.test_views, self.test_crops = test_views, test_crops
        self.num_train, self.num_val, self.num_test = num_train, num_val, num_test
        self.task, self.seed = task, seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._classes: list[str] | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> VideoDataModule:
        """Same as :func:`build_datamodule`."""
        return build_datamodule(cfg)

    # ---- classes ------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """Class names in label order (reads only the labels file)."""
        if self._classes is None:
            if self.dataset == "synthetic":
                from conv3t.data.synthetic import APPEARANCE_CLASSES, MOTION_CLASSES

                self._classes = list(MOTION_CLASSES if self.task == "motion" else APPEARANCE_CLASSES)
            elif self.dataset == "jester":
                from conv3t.data.jester import JESTER_LABELS_FILE, jester_paths, read_jester_labels

                ann, _ = jester_paths(self.root, self.annotation_path, self.frames_dir)
                self._classes, problems = read_jester_labels(ann / JESTER_LABELS_FILE)
                if problems and self.on_error == "raise":
                    raise DataError("; ".join(str(p) for p in problems))
            else:
                from conv3t.data.ucf101 import read_class_index

                self._classes, problems = read_class_index(self.annotation_path / "classInd.txt")  # type: ignore[operator]
                if problems and self.on_error == "raise":
                    raise DataError("; ".join(str(p) for p in problems))
        return list(self._classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ---- datasets -----------------------------------------------------------------------------
    def make_dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if self.dataset == "synthetic":
            from conv3t.data.synthetic import SyntheticMotionDataset

            n = {"train": self.num_train, "val": self.num_val, "test": self.num_test}[split]
            seed = self.seed + {"train": 0, "val": _VAL_SEED_OFFSET, "test": _TEST_SEED_OFFSET}[split]
            ds = SyntheticMotionDataset(n, self.num_frames, self.size, task=self.task, seed=seed)
            if split == "train" and self.flip:
                ds.transform = HorizontalFlip(0.5, ds.flip_label_map)
            return ds
        common: dict[str, Any] = {
            "num_frames": self.num_frames,
            "mode": {"train": "train", "val": "eval", "test": "multiview"}[split],
            "frame_stride": self.frame_stride,
            "pad": self.pad,
            "size": self.size,
            "scale": self.scale,
            "flip": self.flip,
            "temporal_views": self.test_views,
            "spatial_crops": self.test_crops,
            "on_error": self.on_error,
        }
        if self.dataset == "jester":
            from conv3t.data.jester import JesterDataset

            return JesterDataset(
                self.root,
                "train" if split == "train" else "validation",
                annotation_dir=self.annotation_path,
                frames_dir=self.frames_dir,
                **common,
            )
        from conv3t.data.ucf101 import UCF101Dataset

        return UCF101Dataset(self.root, self.annotation_path, self.fold, train=split == "train", **common)  # type: ignore[arg-type]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.make_dataset("train")
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self.make_dataset("val")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self.make_dataset("test")

    def _loader(self, ds: Dataset | None, split: str, shuffle: bool) -> DataLoader:
        if ds is None:
            ds = self.make_dataset(split)
            setattr(self, f"{split}_set", ds)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            drop_last=shuffle and len(ds) >= self.batch_size,  # type: ignore[arg-type]
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, "train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, "val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, "test", shuffle=False)

    def skipped_counts(self, reset: bool = False) -> dict[str, int]:
        """Bad samples skipped so far per split (``on_error="skip"``), e.g. ``{"train": 3, "val": 0}``."""
        out = {}
        for split in ("train", "val", "test"):
            counter = getattr(getattr(self, f"{split}_set", None), "skipped", None)
            if counter is not None:
                out[split] = counter.reset() if reset else counter.count
        return out


class SkippedSamplesReport(pl.Callback):
    """Reports, at the end of every train / validation epoch, how many bad samples were skipped.

    Warns on the ``conv3t.data`` logger when the count is positive, logs ``data/skipped_<split>``
    to the module's logger and keeps ``history`` (a list of ``(epoch, split, count)``).
    """

    def __init__(self) -> None:
        self.history: list[tuple[int, str, int]] = []

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, split: str) -> None:
        dm = trainer.datamodule
        counter = getattr(getattr(dm, f"{split}_set", None), "skipped", None)
        if counter is None:
            return
        n = counter.reset()
        self.history.append((trainer.current_epoch, split, n))
        if n:
            log.warning("epoch %d: skipped %d bad %s sample(s)", trainer.current_epoch, n, split)
        pl_module.log(f"data/skipped_{split}", float(n), on_epoch=True, on_step=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, "train")

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._report(trainer, pl_module, "val")


def build_datamodule(cfg: Mapping[str, Any]) -> VideoDataModule:
    """A :class:`VideoDataModule` from a ``data:`` config mapping.

    Accepted keys are those of :data:`DATA_CONFIG_KEYS` (``dataset`` is required); an unknown
    key raises ``ValueError`` naming it. ``size`` may be an int or ``[H, W]``.
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"data config must be a mapping, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(DATA_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown data config key(s) {unknown}; allowed: {sorted(DATA_CONFIG_KEYS)}")
    if "dataset" not in cfg:
        raise ValueError(f"data config needs 'dataset' (one of {DATASETS})")
    kwargs = {k: v for k, v in cfg.items() if k != "dataset" and v is not None}
    return VideoDataModule(cfg["dataset"], **kwargs)
