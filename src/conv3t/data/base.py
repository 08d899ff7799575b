"""Shared machinery of the file-backed video datasets: sampling, transforms, bad-sample policy, options."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from conv3t.data.errors import DataError, SkipCounter, VideoReadError
from conv3t.data.registry import DatasetSource
from conv3t.data.sampling import PAD_MODES, SAMPLE_MODES, sample_indices
from conv3t.data.transforms import VideoTransform

ON_ERROR = ("raise", "skip")

#: ``(frames uint8 (T, 3, h, w) or (V, T, 3, h, w), label) -> (clip, label)``
ClipTransform = Callable[[torch.Tensor, int], tuple[torch.Tensor, int]]


def torch_seeded_rng() -> np.random.Generator:
    """A numpy generator drawn from torch's RNG, so ``torch.manual_seed`` and DataLoader worker
    seeding make the random crops and windows reproducible."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


@dataclass(frozen=True)
class ClipOptions:
    """How a file-backed dataset turns one video into an item: clip sampling, crops, views, bad-sample policy.

    One value handed to every :class:`VideoClipDataset` (and built by :meth:`ClipSource.clip_options` from a
    data config), so the datasets do not each repeat these keywords.

    Args:
        num_frames: ``T``, frames per clip.
        mode: ``"train"`` (random window, scale jitter, random crop, optional flip), ``"eval"`` (centre window,
            centre crop) or ``"multiview"`` (``temporal_views`` windows x ``spatial_crops`` crops); None = the
            dataset's default (Jester, UCF101: ``"train"`` for the training split, else ``"eval"``; others
            ``"eval"``).
        frame_stride, pad: clip sampling, see :mod:`conv3t.data.sampling`.
        size: output ``(H, W)`` in pixels, or an int for square.
        scale: training scale-jitter range of the crop side (``(1, 1)`` = random crop only).
        flip: random horizontal flip in training; labels follow the dataset's ``flip_label_map``.
        temporal_views, spatial_crops: the multi-view protocol (``spatial_crops`` 1 or 3); ignored in other modes.
        on_error: ``"raise"`` or ``"skip"`` bad videos.
        max_skips: bad videos in a row tried before giving up (with ``"skip"``).
    """

    num_frames: int = 16
    mode: str | None = None
    frame_stride: int = 1
    pad: str = "repeat_last"
    size: int | tuple[int, int] = (112, 112)
    scale: tuple[float, float] = (0.8, 1.0)
    flip: bool = False
    temporal_views: int = 1
    spatial_crops: int = 1
    on_error: str = "raise"
    max_skips: int = 10

    def __post_init__(self) -> None:
        size = (self.size, self.size) if isinstance(self.size, int) else tuple(int(v) for v in self.size)
        object.__setattr__(self, "size", size)  # a list from YAML becomes the tuple the transforms compare
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.mode is not None and self.mode not in SAMPLE_MODES:
            raise ValueError(f"mode must be one of {SAMPLE_MODES}, got {self.mode!r}")
        if self.pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {PAD_MODES}, got {self.pad!r}")
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {self.frame_stride}")
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")
        if self.temporal_views < 1:
            raise ValueError(f"temporal_views must be >= 1, got {self.temporal_views}")
        if self.spatial_crops not in (1, 3):
            raise ValueError(f"spatial_crops must be 1 or 3, got {self.spatial_crops}")

    def with_mode(self, mode: str) -> ClipOptions:
        """These options with ``mode`` filled in where it is None (the dataset's default)."""
        return self if self.mode is not None else replace(self, mode=mode)


class VideoClipDataset(Dataset):
    """Base of the file-backed datasets (:class:`JesterDataset`, :class:`VideoListDataset`, ...).

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

    def __init__(self, options: ClipOptions, transform: ClipTransform | None = None) -> None:
        options = options.with_mode("eval")
        self.options = options
        self.num_frames, self.mode = options.num_frames, options.mode
        self.frame_stride, self.pad = options.frame_stride, options.pad
        self.temporal_views = options.temporal_views if options.mode == "multiview" else 1
        self.on_error, self.max_skips = options.on_error, options.max_skips
        self.skipped = SkipCounter()
        self.transform: ClipTransform = transform or VideoTransform(
            options.size,
            mode=options.mode,
            scale=options.scale,
            flip_p=0.5 if options.flip else 0.0,
            flip_label_map=self.flip_label_map,
            spatial_crops=options.spatial_crops if options.mode == "multiview" else 1,
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


#: Sampling mode of each split: train = random window + augmentation, val = centre clip, test = multi-view.
SPLIT_MODES = {"train": "train", "val": "eval", "test": "multiview"}


@dataclass(kw_only=True)
class ClipSource(DatasetSource):
    """Options shared by the file-backed dataset kinds (a :class:`VideoClipDataset` per split).

    Args:
        num_frames: ``T``, frames per clip.
        size: output ``(H, W)``, or an int for square.
        frame_stride, pad: clip sampling, see :mod:`conv3t.data.sampling`.
        scale: training scale-jitter range of the crop side.
        flip: random horizontal flip in training; labels follow :meth:`flip_label_map`.
        on_error: ``"raise"`` or ``"skip"`` bad videos (and bad list lines).
        test_views, test_crops: the test split's multi-view protocol: ``test_views`` temporal
            clips x ``test_crops`` (1 or 3) spatial crops per video, so test batches are
            ``(B, test_views * test_crops, 3, T, H, W)``; average the logits over dim 1.
    """

    num_frames: int = 30
    size: int | Sequence[int] = (112, 112)
    frame_stride: int = 1
    pad: str = "repeat_last"
    scale: Sequence[float] = (0.8, 1.0)
    flip: bool = False
    on_error: str = "raise"
    test_views: int = 5
    test_crops: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.test_crops not in (1, 3):
            raise ValueError(f"data.test_crops must be 1 or 3, got {self.test_crops}")
        if len(self.scale) != 2:
            raise ValueError(f"data.scale must be [low, high], got {self.scale!r}")
        self.scale = (float(self.scale[0]), float(self.scale[1]))

    def clip_options(self, split: str) -> ClipOptions:
        """The :class:`ClipOptions` of ``split``: its mode (:data:`SPLIT_MODES`), sampling, crops and views."""
        if split not in SPLIT_MODES:
            raise ValueError(f"split must be one of {tuple(SPLIT_MODES)}, got {split!r}")
        return ClipOptions(
            num_frames=self.num_frames,
            mode=SPLIT_MODES[split],
            frame_stride=self.frame_stride,
            pad=self.pad,
            size=self.size if isinstance(self.size, int) else tuple(self.size),
            scale=self.scale,
            flip=self.flip,
            temporal_views=self.test_views,
            spatial_crops=self.test_crops,
            on_error=self.on_error,
        )
