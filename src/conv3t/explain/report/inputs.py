"""The clips the report shows and explains, with the model's predictions on them.

Given ``videos`` (files or frame folders) they are read with :func:`conv3t.data.clips.load_video_clip`;
otherwise a few clips of the run's own validation data are regenerated from ``model.json``'s ``data`` section
(:func:`conv3t.data.clips.split_clips`; synthetic runs make theirs on the fly, Jester/UCF101 need their files).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from conv3t.data.clips import load_video_clip, split_clips
from conv3t.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize
from conv3t.explain.report.context import ReportClip
from conv3t.explain.saliency import model_device
from conv3t.exported import ModelInfo

__all__ = ["dataset_clips", "logits", "predict", "read_clips"]


def read_clips(
    info: ModelInfo, videos: Sequence[str | os.PathLike[str]] | None, count: int
) -> tuple[list[ReportClip], str]:
    """``(clips, where they come from)``; without clips the text says why."""
    if videos:
        stride = int(info.data.get("frame_stride", 1) or 1)
        clips = [
            ReportClip(
                Path(v).name,
                load_video_clip(v, info.num_frames, info.size, info.mean, info.std, stride, argument=f"videos[{i}]"),
            )
            for i, v in enumerate(videos)
        ]
        return clips, "the videos given with --video"
    clips, reason = dataset_clips(info, count)
    if reason and not clips:
        return [], reason
    return clips, f"{len(clips)} clips of the run's own {info.data.get('dataset', '')} validation data"


def dataset_clips(info: ModelInfo, count: int) -> tuple[list[ReportClip], str | None]:
    """A few validation clips of the run's own data, normalised like the model's input; ``(clips, reason)``."""
    if not info.data or "dataset" not in info.data:
        return [], "model.json has no data section to regenerate clips from"
    cfg = dict(info.data)
    cfg.setdefault("num_frames", info.num_frames)
    cfg.setdefault("size", list(info.size))
    items, classes, reason = split_clips(cfg, count)
    mean, std = torch.tensor(info.mean).view(3, 1, 1, 1), torch.tensor(info.std).view(3, 1, 1, 1)
    renormalise = tuple(info.mean) != tuple(IMAGENET_MEAN) or tuple(info.std) != tuple(IMAGENET_STD)
    clips = []
    for i, clip, label in items:
        if renormalise:  # the datasets normalise with ImageNet statistics; the model may expect others
            clip = (denormalize(clip) - mean) / std
        name = classes[label] if 0 <= label < len(classes) else None
        clips.append(ReportClip(f"val clip {i}", clip, label=name))
    return clips, reason


def logits(output: object) -> Tensor:
    """The logits of a model's output (GoogLeNet in training mode returns a tuple; its first item)."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"cannot read logits from a model output of type {type(output).__name__}")


def predict(model: nn.Module, clips: list[ReportClip], classes: Sequence[str]) -> None:
    """Set each clip's top prediction and its probability (softmax), in place; one clip at a time on the
    model's device (any number of ``--video`` files in the memory of one)."""
    device = model_device(model)
    for c in clips:
        with torch.no_grad():
            p = torch.softmax(logits(model(c.clip[None].to(device))), dim=1)[0].cpu()
        k = int(p.argmax())
        c.prediction = classes[k] if k < len(classes) else str(k)
        c.probability = float(p[k])
