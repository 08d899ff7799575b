"""A Lightning data module over any registered dataset kind, built from a ``data:`` config section."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from conv3t.data.loader import ResumableLoader, ResumableSampler
from conv3t.data.registry import LOADER_OPTIONS, SPLITS, DatasetSource, create_source

log = logging.getLogger("conv3t.data")


class VideoDataModule(pl.LightningDataModule):
    """Train / val / test loaders over one dataset of the registry (:mod:`conv3t.data.registry`).

    Args:
        dataset: a registered name (``"synthetic"``, ``"jester"``, ``"ucf101"``, ``"video_list"``,
            ``"frame_list"``, ``"video_folder"``, ...) or a built :class:`DatasetSource`.
        batch_size, num_workers: DataLoader settings.
        pin_memory: default: True when CUDA is available.
        persistent_workers: default: True when ``num_workers > 0``.
        **options: the dataset's own options when ``dataset`` is a name, checked against its
            signature (an unknown key raises ``ValueError`` naming the closest one).

    Train batches are ``(B, 3, T, H, W)`` float32 with int64 labels ``(B,)``; val batches the
    same with one centre clip per video; test batches of the file-backed kinds are multi-view,
    ``(B, test_views * test_crops, 3, T, H, W)``. Bad videos are skipped or raised per the
    dataset's ``on_error`` (skips are counted; add :class:`SkippedSamplesReport` to the Trainer).
    """

    def __init__(
        self,
        dataset: str | DatasetSource,
        *,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if isinstance(dataset, DatasetSource):
            if options:
                raise TypeError(f"options {sorted(options)} go to the DatasetSource, not the data module")
            self.source = dataset
        else:
            self.source = create_source(dataset, options)
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size}, {num_workers}")
        self.dataset = self.source.name
        self.batch_size, self.num_workers = batch_size, num_workers
        self.pin_memory = pin_memory if pin_memory is not None else torch.cuda.is_available()
        self.persistent_workers = persistent_workers if persistent_workers is not None else num_workers > 0
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> VideoDataModule:
        """Same as :func:`build_datamodule`."""
        return build_datamodule(cfg)

    @property
    def num_frames(self) -> int:
        """``T``, frames per clip."""
        return int(self.source.num_frames)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the clips, pixels."""
        return self.source.size

    @property
    def classes(self) -> list[str]:
        """Class names in label order (reads only what names the classes)."""
        return self.source.class_names()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def make_dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return self.source.dataset(split)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.make_dataset("train")
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self.make_dataset("val")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self.make_dataset("test")

    #: Seed of the loaders' sample order and per-sample augmentation (conv3t.train sets the run's seed).
    sample_seed: int = 0

    def _loader(self, ds: Dataset | None, split: str, shuffle: bool) -> DataLoader:
        """A :class:`~conv3t.data.loader.ResumableLoader` of this process's shard of ``split``."""
        if ds is None:
            ds = self.make_dataset(split)
            setattr(self, f"{split}_set", ds)
        trainer = getattr(self, "trainer", None)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = ResumableSampler(
            len(ds),  # type: ignore[arg-type]
            shuffle=shuffle,
            seed=self.sample_seed,
            num_replicas=world,
            rank=rank,
            even=shuffle,  # training: as many steps on every rank; evaluation: every sample exactly once
        )
        return ResumableLoader(
            ds,
            sampler,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            drop_last=shuffle and len(sampler) >= self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        loader = self._loader(self.train_set, "train", shuffle=True)
        if self._resume_state is not None:  # the first training loader after a restore continues the epoch
            loader.load_state_dict(self._resume_state)
            self._resume_state = None
        self._train_loader = loader
        return loader

    # Lightning restores the loaders' own state only when nothing asked for the loader before the restore, but
    # configure_optimizers (estimated_stepping_batches) does; the data module's state is always restored first.
    _train_loader: ResumableLoader | None = None
    _resume_state: dict[str, int] | None = None

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: the training loader's position (epoch, samples of it done, seed)."""
        return {"train_loader": self._train_loader.state_dict()} if self._train_loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_state = state_dict.get("train_loader")

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
    """Counts the bad samples skipped (``on_error="skip"``) per epoch and for the whole run, over all processes.

    At the end of every training epoch and of every validation pass (not the sanity check, whose skips are
    dropped) the split's counter is read and zeroed, summed over the processes, warned about on the
    ``conv3t.data`` logger when positive, logged as ``data/skipped_<split>`` and added to :attr:`totals`
    (``{"train": n, "val": m}``, kept in checkpoints so a resumed run goes on counting). :attr:`history` lists
    ``(epoch, split, count)``.
    """

    def __init__(self) -> None:
        self.history: list[tuple[int, str, int]] = []
        self.totals: dict[str, int] = {"train": 0, "val": 0}

    def state_dict(self) -> dict[str, Any]:
        return {"history": [list(h) for h in self.history], "totals": dict(self.totals)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [(int(e), str(s), int(n)) for e, s, n in state_dict.get("history", [])]
        self.totals = {**self.totals, **{k: int(v) for k, v in state_dict.get("totals", {}).items()}}

    @staticmethod
    def _counter(trainer: pl.Trainer, split: str) -> Any:
        return getattr(getattr(trainer.datamodule, f"{split}_set", None), "skipped", None)

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, split: str) -> None:
        counter = self._counter(trainer, split)
        if counter is None:
            return
        n = counter.reset()
        if getattr(trainer, "world_size", 1) > 1:  # every rank calls this hook: sum the ranks' counts
            local = torch.tensor(float(n), device=pl_module.device)
            n = int(trainer.strategy.reduce(local, reduce_op="sum").item())
        self.history.append((trainer.current_epoch, split, n))
        self.totals[split] = self.totals.get(split, 0) + n
        if n and getattr(trainer, "is_global_zero", True):
            log.warning("epoch %d: skipped %d bad %s sample(s)", trainer.current_epoch, n, split)
        pl_module.log(f"data/skipped_{split}", float(n), on_epoch=True, on_step=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, "train")

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counter = self._counter(trainer, "val")
        if counter is not None:
            counter.reset()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._report(trainer, pl_module, "val")


def build_datamodule(cfg: Mapping[str, Any]) -> VideoDataModule:
    """A :class:`VideoDataModule` from a ``data:`` config mapping.

    ``dataset`` (required) names a registered dataset kind; the keys of :data:`LOADER_OPTIONS`
    configure the loaders and every other key is one of that dataset's options. None values mean
    the default. An unknown key raises ``ValueError`` naming it and the closest accepted key.
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"data config must be a mapping, got {type(cfg).__name__}")
    if "dataset" not in cfg:
        raise ValueError("data config needs 'dataset' (a registered dataset name, e.g. 'video_list')")
    loader = {k: v for k, v in cfg.items() if k in LOADER_OPTIONS and v is not None}
    options = {k: v for k, v in cfg.items() if k != "dataset" and k not in LOADER_OPTIONS}
    return VideoDataModule(create_source(cfg["dataset"], options), **loader)
