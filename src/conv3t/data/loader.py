"""Data loaders that resume mid-epoch exactly, shard by process rank, and seed every sample on its own.

A killed run that resumes from a checkpoint written in the middle of an epoch must see the same batches,
with the same augmentations, as an uninterrupted run. Three pieces make that so:

* :class:`ResumableSampler` draws the epoch's order from ``(seed, epoch)`` alone (a private generator, not the
  global RNG), takes this rank's shard of it, and can start the epoch at a given position.
* :class:`SeededSamples` runs every ``dataset[i]`` under the torch / NumPy / Python generators seeded from
  ``(seed, epoch, i, rank)`` and restores the caller's generators afterwards. Augmentation then depends only on
  which sample is drawn, not on how many batches were fetched before, on the number of loader workers, or on
  what the training step drew (dropout). Restoring a saved global RNG state instead would break as soon as a
  loader prefetches, or workers are used, because the draws would then happen at other moments.
* :class:`ResumableLoader` is a ``DataLoader`` with ``state_dict`` / ``load_state_dict`` (epoch, position,
  seed, shard count). Lightning saves that state in every checkpoint and hands it back on ``--resume``.

Sharding (several processes): a training epoch's order is cut to a multiple of the number of processes, so
every rank runs the same number of steps; evaluation shards are ``range(rank, n, world)`` without padding, so
every sample is counted exactly once when the metrics are summed over ranks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["ResumableLoader", "ResumableSampler", "SeededSamples", "sample_seed"]

log = logging.getLogger("conv3t.data")


def sample_seed(seed: int, epoch: int, index: int, rank: int) -> np.ndarray:
    """Four independent 32-bit words (``uint32 (4,)``) for sample ``index`` of ``epoch`` on ``rank``."""
    return np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index, rank, 0x5EED]).generate_state(4)


class SeededSamples(Dataset):
    """``dataset`` indexed by ``(index, words)`` pairs: each item is read under generators seeded from ``words``.

    ``words`` (from :func:`sample_seed`) seed torch's CPU generator, NumPy's legacy global generator and Python's
    ``random``; the caller's states are restored afterwards, so reading a sample never moves the training
    process's random streams.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, np.ndarray]) -> Any:
        index, words = item
        saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            # the CPU generator only: torch.manual_seed would also reseed every GPU (70 us per sample)
            torch.default_generator.manual_seed(int(words[0]) << 32 | int(words[1]))
            np.random.seed(int(words[2]))
            random.seed(int(words[3]))
            return self.dataset[index]
        finally:
            torch.set_rng_state(saved[0])
            np.random.set_state(saved[1])
            random.setstate(saved[2])


class ResumableSampler(DistributedSampler):
    """This rank's ``(index, seed words)`` of one epoch, in an order drawn from ``(seed, epoch)``.

    It subclasses ``DistributedSampler`` only so that Lightning leaves it in place (Lightning swaps any other
    sampler for its own, padded, distributed one); the parent's constructor is not used.

    Args:
        length: dataset size.
        shuffle: a new random order every epoch (training) or the dataset order (evaluation).
        seed: seed of the order and of the per-sample seeds.
        num_replicas, rank: number of processes and this process's rank.
        even: cut the order to a multiple of ``num_replicas`` so every rank gets as many samples (training);
            otherwise shards differ by at most one sample and nothing is repeated (evaluation).
    """

    def __init__(
        self, length: int, *, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0, even: bool = True
    ) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}")
        self.length, self.shuffle, self.seed = int(length), bool(shuffle), int(seed)
        self.num_replicas, self.rank, self.even = int(num_replicas), int(rank), bool(even)
        self.epoch = 0
        self.start = 0  # position (in this rank's shard) where the next iteration begins
        self._resume: tuple[int, int] | None = None  # (epoch, position) from load_state_dict

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, position: int) -> None:
        """Start ``epoch`` at ``position`` (samples of this shard already trained); other epochs start at 0."""
        self._resume = (int(epoch), int(position))

    def shard(self) -> list[int]:
        """Dataset indices of this rank for the current epoch, in order."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        if self.even:
            order = order[: self.length - self.length % self.num_replicas]
        return order[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        if self.even:
            return self.length // self.num_replicas
        return len(range(self.rank, self.length, self.num_replicas))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        self.start = 0
        if self._resume is not None:
            epoch, position = self._resume
            self._resume = None
            if epoch == self.epoch:
                self.start = min(position, len(self))
        for index in self.shard()[self.start :]:
            yield index, sample_seed(self.seed, self.epoch, index, self.rank)


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over :class:`SeededSamples` with a :class:`ResumableSampler`, resumable mid-epoch.

    ``state_dict()`` records the epoch and how many samples of it this loader has handed out (Lightning
    fetches sized loaders without prefetching, so that is what was trained); ``load_state_dict()`` makes the
    next iteration of that epoch continue from there. Other keyword arguments go to ``DataLoader``
    (``batch_size``, ``num_workers``, ``drop_last``, ...). Batches are those of ``dataset``: ``(clips, labels)``.
    """

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, **kwargs: Any) -> None:
        if len(dataset) != sampler.length:  # type: ignore[arg-type]
            raise ValueError(f"sampler length {sampler.length} != dataset length {len(dataset)}")  # type: ignore[arg-type]
        # A private generator: creating an iterator then draws its base seed from here, not from the global RNG.
        kwargs.setdefault("generator", torch.Generator().manual_seed(sampler.seed))
        super().__init__(SeededSamples(dataset), sampler=sampler, **kwargs)
        self.handed_out = 0  # samples of the current epoch handed out, resumed position included

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        iterator = super().__iter__()  # draws the sampler's order, resumed position included
        first = True
        for batch in iterator:
            if first:
                self.handed_out, first = sampler.start, False
            self.handed_out += _batch_len(batch)
            yield batch
        if first:  # nothing left of a resumed epoch
            self.handed_out = sampler.start

    def state_dict(self) -> dict[str, int]:
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        return {
            "epoch": sampler.epoch,
            "position": int(self.handed_out),
            "seed": sampler.seed,
            "num_replicas": sampler.num_replicas,
            "length": sampler.length,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: ResumableSampler = self.sampler  # type: ignore[assignment]
        same = (state.get("num_replicas"), state.get("length"), state.get("seed")) == (
            sampler.num_replicas,
            sampler.length,
            sampler.seed,
        )
        if not same:
            log.warning(
                "the checkpoint's data order (%s) does not fit this run's (seed %d, %d samples, %d processes): "
                "the resumed epoch starts from its beginning",
                state,
                sampler.seed,
                sampler.length,
                sampler.num_replicas,
            )
            return
        sampler.resume_at(int(state["epoch"]), int(state["position"]))


def _batch_len(batch: Any) -> int:
    first = batch[0] if isinstance(batch, list | tuple) else batch
    return int(first.shape[0]) if hasattr(first, "shape") else len(first)
