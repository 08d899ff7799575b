"""Count the tensor storage that outlives the step that allocated it: a leak detector that does not read RSS.

Every aten operation runs through a :class:`~torch.utils._python_dispatch.TorchDispatchMode`; each output whose
storage is not one of the operation's inputs' (so not a view, not an ``out=`` or in-place result) is a fresh
allocation, remembered by a weak reference to its storage. After more steps and a ``gc.collect()``, every
remembered storage that is still alive is memory that a finished step left behind: a leak. Unlike the resident
set this is exact (bytes, not pages), blind to allocator slack and to other processes on a shared machine, and it
sees storage held by cycles through C++ autograd nodes, which ``gc`` can neither see nor free.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _FreshStorage(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.allocated: list[tuple[StorageWeakRef, int, str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        seen: set[int] = set()
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            if storage._cdata in inputs or storage._cdata in seen or storage.nbytes() == 0:
                continue
            seen.add(storage._cdata)
            self.allocated.append((StorageWeakRef(storage), storage.nbytes(), str(func)))
        return out


@dataclass(frozen=True)
class Survivors:
    """Storage allocated during the watched steps and still alive after the later ones.

    Attributes:
        nbytes: bytes of those storages, in total.
        count: how many storages.
        largest: ``(bytes, aten operation)`` of the largest few, for the failure message.
    """

    nbytes: int
    count: int
    largest: tuple[tuple[int, str], ...]


def surviving_storage(step: Callable[[], object], warmup: int = 2, watched: int = 25, after: int = 3) -> Survivors:
    """Run ``step`` ``warmup + watched + after`` times; what the ``watched`` steps allocated that is still alive.

    ``warmup`` steps let lazily created state settle (optimiser moments, cached kernel-generation constants);
    ``after`` steps replace what a step legitimately hands to the next (``.grad``, the last loss).
    """
    for _ in range(warmup):
        step()
    mode = _FreshStorage()
    with mode:
        for _ in range(watched):
            step()
    for _ in range(after):
        step()
    gc.collect()
    alive = [(n, op) for ref, n, op in mode.allocated if not ref.expired()]
    alive.sort(reverse=True)
    return Survivors(sum(n for n, _ in alive), len(alive), tuple(alive[:5]))


def held_after(fn: Callable[[], object]) -> tuple[object, list[tuple[StorageWeakRef, int, str]]]:
    """Run ``fn`` once; its result and the storages it allocated that are still alive after it returned.

    Returned as ``(weak reference, bytes, aten operation)``; a ``gc.collect()`` runs first. The caller holds
    the result, so its own storage is among them.
    """
    mode = _FreshStorage()
    with mode:
        result = fn()
    gc.collect()
    return result, [(ref, n, op) for ref, n, op in mode.allocated if not ref.expired()]
