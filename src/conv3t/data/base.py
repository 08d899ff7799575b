"""Shared machinery of the file-backed video datasets: sampling, transforms, bad-sample policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from conv3t.data.errors import DataError, SkipCounter, VideoReadError
from conv3t.data.sampling import PAD_MODES, SAMPLE_MODES, sample_indices
from conv3t.data.transforms import VideoTransform

ON_ERROR = ("raise", "skip")

#: ``(frames uint8 (T, 3, h, w) or (V, T, 3, h, w), label) -> (clip, label)``
ClipTransform = Callable[[torch.Tensor, int], tuple[torch.Tensor, int]]


def torch_seeded_rng() -> np.random.Generator:
    """A numpy generator drawn from torch's RNG, so ``torch.manual_seed`` and DataLoader worker
    seeding make the random crops and windows reproducible."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


class VideoClipDataset(Dataset):
    """Base of :class:`JesterDataset` and :class:`UCF101Dataset`.

    Subclasses fill ``self.videos`` (ids), ``self.labels`` (0-based, -1 = unlabeled) and implement
    :meth:`read_frames`. Items are ``(clip, label)`` with ``clip`` float32 ``(3, T, H, W)``, or
    ``(V * S, 3, T, H, W)`` in ``"multiview"`` mode (``V`` temporal views × ``S`` spatial crops).

    Bad samples: with ``on_error="raise"`` a :class:`VideoReadError` names the video and file;
    with ``"skip"`` the next index is tried (up to ``max_skips`` times), the skip is logged once
    per video and counted in :attr:`skipped` (a :class:`SkipCounter`, shared with DataLoader
    workers).
    """

    videos: list[str]
    labels: list[int]
    classes: list[str]
    flip_label_map: dict[int, int]

    def __init__(
        self,
        *,
        num_frames: int,
        mode: str,
        frame_stride: int,
        pad: str,
        size: Sequence[int],
        scale: tuple[float, float],
        flip: bool,
        temporal_views: int,
        spatial_crops: int,
        transform: ClipTransform | None,
        on_error: str,
        max_skips: int,
    ) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if mode not in SAMPLE_MODES:
            raise ValueError(f"mode must be one of {SAMPLE_MODES}, got {mode!r}")
        if pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if temporal_views < 1:
            raise ValueError(f"temporal_views must be >= 1, got {temporal_views}")
        self.num_frames, self.mode, self.frame_stride, self.pad = num_frames, mode, frame_stride, pad
        self.temporal_views = temporal_views if mode == "multiview" else 1
        self.on_error, self.max_skips = on_error, max_skips
        self.skipped = SkipCounter()
        self.transform: ClipTransform = transform or VideoTransform(
            size,
            mode=mode,
            scale=scale,
            flip_p=0.5 if flip else 0.0,
            flip_label_map=self.flip_label_map,
            spatial_crops=spatial_crops if mode == "multiview" else 1,
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.videos)

    def sample(self, num_available: int, rng: np.random.Generator) -> np.ndarray:
        """Frame indices for one item, ``(V, num_frames)``; see :mod:`conv3t.data.sampling`."""
        return sample_indices(
            self.mode, num_available, self.num_frames, self.frame_stride, self.pad, self.temporal_views, rng
        )

    def read_frames(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Decode the sampled frames of video ``index`` as ``uint8 (V, T, 3, h, w)``."""
        raise NotImplementedError

    def load(self, index: int) -> tuple[torch.Tensor, int]:
        """Item ``index`` without the skip policy (raises :class:`VideoReadError`)."""
        rng = torch_seeded_rng()
        frames = self.read_frames(index, rng)
        if self.mode != "multiview":  # one window: (T, 3, h, w); multiview keeps (V, T, 3, h, w)
            frames = frames[0]
        if isinstance(self.transform, VideoTransform):
            return self.transform(frames, self.labels[index], rng=rng)
        return self.transform(frames, self.labels[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        index %= len(self)
        for k in range(self.max_skips + 1):
            j = (index + k) % len(self)
            try:
                return self.load(j)
            except VideoReadError as err:
                if self.on_error == "raise":
                    raise
                self.skipped.record(err)
        raise DataError(
            f"{self.max_skips + 1} bad videos in a row from index {index} ({self.videos[index]!r}); "
            "is the dataset root right? Run `conv3t data check` for a full report."
        )

    def label_counts(self) -> Mapping[int, int]:
        out: dict[int, int] = {}
        for y in self.labels:
            out[y] = out.get(y, 0) + 1
        return out
