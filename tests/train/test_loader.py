"""The resumable, rank-sharded loader of conv3t.data.loader: shards, per-sample seeds, resume position."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from conv3t.data.loader import ResumableLoader, ResumableSampler, SeededSamples, sample_seed


class Draws(Dataset):
    """Item ``i`` = ``(i, a draw from torch's, NumPy's and Python's global generators)``: shows the seeding."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor(i), torch.tensor([float(torch.rand(())), np.random.random(), random.random()])


def _indices(sampler: ResumableSampler) -> list[int]:
    return [i for i, _ in sampler]


@pytest.mark.parametrize("n", [7, 8])
def test_training_shards_are_disjoint_and_equal_evaluation_shards_cover_once(n):
    train = [ResumableSampler(n, shuffle=True, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    for s in train:
        s.set_epoch(1)
    a, b = (_indices(s) for s in train)
    assert len(a) == len(b) == n // 2 and not set(a) & set(b)  # same step count on both ranks, no sample twice
    evals = [_indices(ResumableSampler(n, shuffle=False, num_replicas=2, rank=r, even=False)) for r in (0, 1)]
    assert sorted(evals[0] + evals[1]) == list(range(n))  # every validation sample exactly once, no padding
    assert len(ResumableSampler(n, shuffle=False, num_replicas=2, rank=1, even=False)) == len(evals[1])


def test_order_depends_on_seed_and_epoch_only():
    s = ResumableSampler(50, shuffle=True, seed=1)
    first = _indices(s)
    torch.manual_seed(123)  # the global generator plays no part
    assert _indices(s) == first
    s.set_epoch(1)
    assert _indices(s) != first and sorted(_indices(s)) == list(range(50))


def test_each_rank_draws_its_own_augmentation_and_the_caller_rng_is_untouched():
    ds = SeededSamples(Draws(4))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    r0 = ds[(2, sample_seed(0, 0, 2, rank=0))][1]
    r1 = ds[(2, sample_seed(0, 0, 2, rank=1))][1]
    assert torch.equal(torch.get_rng_state(), before)  # reading samples does not move the training RNG
    assert (r0 != r1).all()  # same sample, other rank: other torch, NumPy and Python draws
    assert torch.equal(ds[(2, sample_seed(0, 0, 2, rank=0))][1], r0)  # and reproducible
    assert not torch.equal(ds[(2, sample_seed(0, 1, 2, rank=0))][1], r0)  # a new epoch, new draws


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_resumes_mid_epoch_with_the_same_batches(num_workers):
    def loader():
        return ResumableLoader(Draws(10), ResumableSampler(10, shuffle=True, seed=5), batch_size=3,
                               num_workers=num_workers, drop_last=True)  # fmt: skip

    full = loader()
    full.sampler.set_epoch(2)
    reference = list(full)
    assert len(reference) == 3 and full.state_dict()["position"] == 9

    killed = loader()
    killed.sampler.set_epoch(2)
    it = iter(killed)
    next(it)
    state = killed.state_dict()
    assert state == {"epoch": 2, "position": 3, "seed": 5, "num_replicas": 1, "length": 10}
    resumed = loader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)
    rest = list(resumed)
    assert len(rest) == 2 and resumed.state_dict()["position"] == 9
    for got, want in zip(rest, reference[1:]):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])  # same samples, same draws
    resumed.sampler.set_epoch(3)
    assert len(list(resumed)) == 3  # the next epoch starts from its beginning
    other = loader()
    other.load_state_dict({**state, "epoch": 1})
    other.sampler.set_epoch(2)
    assert len(list(other)) == 3  # a position of another epoch does not apply
