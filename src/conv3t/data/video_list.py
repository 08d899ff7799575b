"""``video_list``: your own video files, named by one list file per split (mmaction2's format).

::

    root/cats/jump_01.mp4 ...                 any container and codec PyAV decodes
    train.txt   "cats/jump_01.mp4 cat"        path relative to root, then a class name ...
    val.txt     "cats/jump_07.mp4 0"          ... or a 0-based class index
    classes.txt "cat" / "dog" / ...           optional: one name per line, line order = label

See :mod:`conv3t.data.lists` for the rules on labels and classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from conv3t.data.base import ClipOptions, ClipTransform, VideoClipDataset
from conv3t.data.decode import VideoFile
from conv3t.data.lists import ListEntry, ListSource
from conv3t.data.registry import register_dataset
from conv3t.data.scan import VideoCheck, check_video_file

#: File name endings taken for videos where no list names them (``video_folder``, the unlisted report).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")


def is_video_file(path: Path) -> bool:
    """A visible file whose name ends in one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".") and path.is_file()


class VideoFileDataset(VideoClipDataset):
    """Clips of video files: items ``(clip, label)``, ``clip`` float32 ``(3, T, H, W)`` (multi-view:
    ``(V * S, 3, T, H, W)``), ImageNet-normalised. Frames are decoded with PyAV, seeking to the
    keyframe before the clip.

    Args:
        root: the folder ``videos`` are relative to.
        videos: relative paths, one per item.
        labels: 0-based labels, one per item.
        classes: class names in label order.
        flip_label_map: label swaps under a horizontal mirror (default none).
        clips: sampling, crops, views and bad-video policy (:class:`~conv3t.data.base.ClipOptions`).
        transform: replaces the built-in transform, as for :class:`~conv3t.data.JesterDataset`.
    """

    def __init__(
        self,
        root: str | Path,
        videos: Sequence[str],
        labels: Sequence[int],
        classes: Sequence[str],
        flip_label_map: dict[int, int] | None = None,
        clips: ClipOptions | None = None,
        *,
        transform: ClipTransform | None = None,
    ) -> None:
        if len(videos) != len(labels):
            raise ValueError(f"{len(videos)} videos but {len(labels)} labels")
        self.root = Path(root)
        self.videos, self.labels, self.classes = list(videos), list(labels), list(classes)
        self.flip_label_map = dict(flip_label_map or {})
        super().__init__(clips or ClipOptions(), transform)

    def read_frames(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        vid = self.videos[index]
        with VideoFile(vid, self.root / vid) as video:
            idx = self.sample(video.num_frames, rng)
            frames = video.read(idx.reshape(-1))
        return frames.reshape(*idx.shape, *frames.shape[1:])


@register_dataset("video_list")
@dataclass(kw_only=True)
class VideoListSource(ListSource):
    """Video files named by list files, lines ``relative/path.ext label``.

    Options: ``root``, ``train_list``, ``val_list``, ``test_list`` (default ``val_list``),
    ``classes`` (see :class:`~conv3t.data.lists.ListSource`) and the clip options of
    :class:`~conv3t.data.base.ClipSource` (16 frames of 112 x 112 by default).
    """

    num_frames: int = 16

    def dataset(self, split: str) -> VideoFileDataset:
        rows = self.rows(split)
        return VideoFileDataset(
            self.root,
            [e.path for e, _ in rows],
            [label for _, label in rows],
            self.class_names(),
            clips=self.clip_options(split),
        )

    def video_check(self, entries: dict[str, ListEntry]) -> VideoCheck:
        return check_video_file

    def on_disk(self, root: Path) -> list[Path]:
        return [p for p in root.rglob("*") if is_video_file(p)]
