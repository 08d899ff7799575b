"""Single clips for inspecting a model: one video file or frame folder, or a few clips of a dataset's split.

The explanation report shows and explains these; they are preprocessed like the evaluation data (centre
window of frames, centre crop resized to the model's size, normalisation), so what the report shows is what
the model saw. Errors name the argument the caller passed (``argument``, e.g. ``"videos[2]"``), not a
command-line flag: the command maps arguments to its flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from conv3t.data.datamodule import build_datamodule
from conv3t.data.decode import VideoFile
from conv3t.data.errors import DataError, VideoReadError
from conv3t.data.preprocessing import ClipPreprocessing
from conv3t.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize

__all__ = ["FRAME_SUFFIXES", "load_video_clip", "read_frame_folder", "split_clips"]

#: Frame image files a frame folder may hold (read in name order).
FRAME_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def read_frame_folder(folder: str | os.PathLike[str], argument: str = "path") -> Tensor:
    """Every frame image of ``folder`` in name order as ``uint8 (N, 3, H, W)``; all frames must share a size."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise ValueError(f"{argument} {folder}: folder has no frame images ({', '.join(FRAME_SUFFIXES)})")
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1))
        except OSError as err:
            raise ValueError(f"{argument} {folder}: cannot read frame {f.name} ({err})") from None
    if len({tuple(fr.shape) for fr in frames}) != 1:
        raise ValueError(f"{argument} {folder}: frames differ in size")
    return torch.stack(frames)


def load_video_clip(path: str | os.PathLike[str], transforms: ClipPreprocessing, argument: str = "path") -> Tensor:
    """Read a video file (PyAV) or a folder of frame images (sorted by name) as a model input.

    ``transforms`` is the model's preprocessing (``load_exported(run).transforms``, a
    :class:`~conv3t.data.preprocessing.ClipPreprocessing`): only the frames of its centre window are decoded,
    then cropped, resized and normalised by it. Returns ``(3, num_frames, H, W)`` float32.

    Raises FileNotFoundError (no such file or folder) or ValueError (unreadable), both naming ``argument``
    and the path.
    """
    if not isinstance(transforms, ClipPreprocessing):
        raise TypeError(
            "load_video_clip: transforms must be the model's ClipPreprocessing (load_exported(run).transforms, or "
            f"ClipPreprocessing(num_frames, size, mean, std, frame_stride)), got {type(transforms).__name__}"
        )
    path = Path(path)
    if path.is_dir():
        frames = read_frame_folder(path, argument)
        frames = frames[torch.from_numpy(transforms.frame_indices(len(frames)))]
    elif path.is_file():
        try:
            with VideoFile(path.name, path) as video:
                frames = video.read(transforms.frame_indices(video.num_frames))
        except VideoReadError as err:
            raise ValueError(f"{argument} {path}: {err}") from None
    else:
        raise FileNotFoundError(f"{argument} {path}: no such file or folder")
    return transforms.spatial(frames)


def split_clips(
    data: Mapping[str, Any], count: int, split: str = "val", transforms: ClipPreprocessing | None = None
) -> tuple[list[tuple[int, Tensor, int]], list[str], str | None]:
    """Up to ``count`` clips spread over a split of the dataset a data config describes.

    Args:
        data: a training config's ``data`` section (``dataset`` and its options).
        count: how many clips; they are spread evenly over the split (for synthetic data, whose label is the
            index modulo the number of classes, this shows different classes).
        transforms: the model's preprocessing: clips come out in its normalisation, and its frames and size fill
            ``num_frames`` / ``size`` where ``data`` has none (the datasets normalise with ImageNet statistics).

    Returns:
        ``(clips, classes, reason)``: ``clips`` holds ``(index, clip (3, T, H, W) normalised like the model's
        input (ImageNet statistics without ``transforms``), label)``; ``reason`` says why there are fewer than
        asked (None if not).
    """
    cfg = dict(data)
    if transforms is not None:
        cfg.setdefault("num_frames", transforms.num_frames)
        cfg.setdefault("size", list(transforms.size))
    renormalise = transforms is not None and (transforms.mean, transforms.std) != (IMAGENET_MEAN, IMAGENET_STD)
    try:
        dm = build_datamodule(cfg)
        dataset = dm.make_dataset(split)
        classes = list(dm.classes)
    except (DataError, OSError, ValueError, KeyError, TypeError) as err:
        return [], [], f"the run's {cfg.get('dataset')} data could not be opened ({err})"
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        return [], classes, f"the run's {split} set is empty"
    picks = sorted({min(n - 1, round(j * min(n, max(len(classes), count)) / count)) for j in range(count)})
    clips = []
    for i in picks:
        try:
            clip, label = dataset[i]
        except (DataError, OSError) as err:
            return clips, classes, f"reading {split} clip {i} failed ({err})"
        if clip.ndim == 5:  # multi-view item: keep the first view
            clip = clip[0]
        if renormalise:  # the datasets normalise with ImageNet statistics; the model may expect others
            clip = transforms.normalize_pixels(denormalize(clip.float()))  # type: ignore[union-attr]
        clips.append((i, clip.float(), int(label)))
    return clips, classes, None
