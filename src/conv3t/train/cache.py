"""Keep a small dataset's clips in memory, rendered or decoded once.

Synthetic clips cost tens of milliseconds each to render; re-rendering them every epoch would dominate a
small CPU run such as ``conv3t demo``. :func:`cache_dataset` renders every item once (in parallel worker
processes when ``num_workers > 0``) and returns an in-memory dataset with the same items, ``classes`` and
``skipped`` attributes. Only for datasets without random augmentation (or where a fixed draw is acceptable):
every epoch then sees exactly the same clips.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = ["InMemoryClips", "cache_dataset"]


def _as_table(mapping: dict[int, int], n: int) -> Tensor:
    table = torch.arange(n)
    for k, v in mapping.items():
        table[k] = v
    return table


class InMemoryClips(Dataset):
    """Clips ``(N, 3, T, H, W)`` and labels ``(N,)`` held in memory; items are ``(clip, label)``.

    Optional label-aware augmentation, drawn from torch's global RNG (so seeding and checkpointed RNG state
    cover it): ``flip_map`` mirrors the clip left-right with probability 1/2 and maps the label through it;
    ``reverse_map`` plays the clip backwards with probability 1/2 and maps the label through it.
    """

    def __init__(
        self,
        clips: Tensor,
        labels: Tensor,
        classes: list[str] | None = None,
        flip_map: dict[int, int] | None = None,
        reverse_map: dict[int, int] | None = None,
    ) -> None:
        if clips.shape[0] != labels.shape[0]:
            raise ValueError(f"{clips.shape[0]} clips but {labels.shape[0]} labels")
        self.clips, self.labels = clips, labels.to(torch.int64)
        self.classes = list(classes) if classes is not None else None
        n = int(self.labels.max()) + 1 if len(self.labels) else 0
        n = max(n, len(self.classes or []))
        self.flip_table = _as_table(flip_map, n) if flip_map is not None else None
        self.reverse_table = _as_table(reverse_map, n) if reverse_map is not None else None
        self.skipped = None  # same interface as the datasets of conv3t.data

    def __len__(self) -> int:
        return int(self.clips.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        clip, label = self.clips[index], self.labels[index]
        if self.flip_table is not None and bool(torch.rand(()) < 0.5):
            clip, label = clip.flip(-1), self.flip_table[label]
        if self.reverse_table is not None and bool(torch.rand(()) < 0.5):
            clip, label = clip.flip(1), self.reverse_table[label]
        return clip, label


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def cache_dataset(
    dataset: Dataset,
    num_workers: int = 0,
    batch_size: int = 32,
    progress: Any = None,
    description: str = "",
    flip_map: dict[int, int] | None = None,
    reverse_map: dict[int, int] | None = None,
) -> InMemoryClips:
    """Materialise every ``(clip, label)`` of ``dataset`` into an :class:`InMemoryClips`.

    ``progress`` is an optional callable ``(done, total, description)`` called after each batch;
    ``flip_map`` / ``reverse_map`` turn on the augmentations of :class:`InMemoryClips`.
    """
    n = len(dataset)  # type: ignore[arg-type]
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=_one_thread if num_workers > 0 else None,
        # Rendering does not touch the global RNG state of this process: keep it that way.
        generator=torch.Generator().manual_seed(0),
    )
    clips: list[Tensor] = []
    labels: list[Tensor] = []
    done = 0
    for x, y in loader:
        clips.append(x)
        labels.append(torch.as_tensor(y))
        done += x.shape[0]
        if progress is not None:
            progress(done, n, description)
    return InMemoryClips(
        torch.cat(clips),
        torch.cat(labels),
        getattr(dataset, "classes", None),
        flip_map=flip_map,
        reverse_map=reverse_map,
    )
