"""``frame_list``: your own videos as folders of JPEG frames, named by one list file per split
(mmaction2's rawframe format).

::

    root/jump_01/img_00001.jpg, img_00002.jpg, ...   frames numbered from 1 (frame_template)
    train.txt   "jump_01 48 cat"                      frame folder, frame count, class name or index
    classes.txt "cat" / "dog" / ...                   optional: one name per line, line order = label

``frame_template`` names frame ``i`` (1-based): ``img_{:05d}.jpg`` by default, Jester's
``{:05d}.jpg`` works as well. See :mod:`conv3t.data.lists` for labels and classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from conv3t.data.base import ClipOptions, ClipTransform, VideoClipDataset
from conv3t.data.decode import read_jpeg_frames
from conv3t.data.errors import Problem
from conv3t.data.lists import ListEntry, ListSource
from conv3t.data.registry import register_dataset
from conv3t.data.scan import VideoCheck, check_frame_paths

DEFAULT_FRAME_TEMPLATE = "img_{:05d}.jpg"


def check_frame_template(template: str) -> str:
    """``template`` if it names distinct ``.jpg`` / ``.jpeg`` files for frames 1, 2, ...; else ``ValueError``."""
    try:
        first, second = template.format(1), template.format(2)
    except (IndexError, KeyError, ValueError) as err:
        raise ValueError(
            f"data.frame_template {template!r} must format one frame number, e.g. 'img_{{:05d}}.jpg' ({err})"
        ) from None
    if first == second or "/" in first:
        raise ValueError(f"data.frame_template {template!r} must give each frame its own file name in the folder")
    if not first.lower().endswith((".jpg", ".jpeg")):
        raise ValueError(f"data.frame_template {template!r} must name JPEG files (.jpg or .jpeg)")
    return template


def frame_paths(folder: Path, template: str, indices: Sequence[int]) -> list[Path]:
    """Files of the 0-based frame ``indices`` (frame ``i`` is ``template.format(i + 1)``)."""
    return [folder / template.format(int(i) + 1) for i in indices]


class FrameListDataset(VideoClipDataset):
    """Clips of JPEG frame folders: items ``(clip, label)``, ``clip`` float32 ``(3, T, H, W)``
    (multi-view: ``(V * S, 3, T, H, W)``), ImageNet-normalised. Only the sampled frames are read.

    Args:
        root: the folder ``folders`` are relative to.
        folders: relative frame folders, one per item.
        frame_counts: frames of each folder (as listed).
        labels: 0-based labels; ``classes``: names in label order.
        frame_template: file name of frame ``i`` (1-based).
        clips: sampling, crops, views and bad-video policy (:class:`~conv3t.data.base.ClipOptions`).
        transform: replaces the built-in transform, as for :class:`~conv3t.data.JesterDataset`.
    """

    def __init__(
        self,
        root: str | Path,
        folders: Sequence[str],
        frame_counts: Sequence[int],
        labels: Sequence[int],
        classes: Sequence[str],
        frame_template: str = DEFAULT_FRAME_TEMPLATE,
        clips: ClipOptions | None = None,
        *,
        transform: ClipTransform | None = None,
    ) -> None:
        if not len(folders) == len(frame_counts) == len(labels):
            raise ValueError(f"{len(folders)} folders, {len(frame_counts)} frame counts, {len(labels)} labels")
        self.root, self.frame_template = Path(root), check_frame_template(frame_template)
        self.videos, self.frame_counts = list(folders), [int(n) for n in frame_counts]
        self.labels, self.classes = list(labels), list(classes)
        self.flip_label_map = {}
        super().__init__(clips or ClipOptions(), transform)

    def read_frames(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        vid = self.videos[index]
        idx = self.sample(self.frame_counts[index], rng)
        unique, inverse = np.unique(idx, return_inverse=True)
        frames = read_jpeg_frames(vid, frame_paths(self.root / vid, self.frame_template, unique))
        return frames[torch.from_numpy(inverse.reshape(idx.shape))]


@register_dataset("frame_list")
@dataclass(kw_only=True)
class FrameListSource(ListSource):
    """JPEG frame folders named by list files, lines ``frame_dir num_frames label``.

    Options: ``root``, ``train_list``, ``val_list``, ``test_list`` (default ``val_list``),
    ``classes`` (see :class:`~conv3t.data.lists.ListSource`), ``frame_template`` and the clip
    options of :class:`~conv3t.data.base.ClipSource` (16 frames of 112 x 112 by default).
    """

    frame_template: str = DEFAULT_FRAME_TEMPLATE
    num_frames: int = 16
    frames = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_frame_template(self.frame_template)

    def dataset(self, split: str) -> FrameListDataset:
        rows = self.rows(split)
        return FrameListDataset(
            self.root,
            [e.path for e, _ in rows],
            [e.num_frames for e, _ in rows],
            [label for _, label in rows],
            self.class_names(),
            self.frame_template,
            self.clip_options(split),
        )

    def video_check(self, entries: dict[str, ListEntry]) -> VideoCheck:
        template = self.frame_template

        def check(vid: str, folder: Path, decode: bool) -> tuple[list[Problem], int]:
            if not folder.is_dir():
                return [Problem(folder, "frame folder is missing", video=vid)], 0
            return check_frame_paths(vid, frame_paths(folder, template, range(entries[vid].num_frames)), decode)

        return check

    def on_disk(self, root: Path) -> list[Path]:
        return sorted({p.parent for p in root.rglob(self.frame_template.format(1))})
