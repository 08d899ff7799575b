"""The clips the report shows and explains, with the model's predictions on them.

Given ``videos`` (files or frame folders) they are read with :func:`conv3t.data.clips.load_video_clip`;
otherwise a few clips of the run's own validation data are regenerated from ``model.json``'s ``data`` section
(:func:`conv3t.data.clips.split_clips`; synthetic runs make theirs on the fly, Jester/UCF101 need their files).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from conv3t.data.clips import load_video_clip, split_clips
from conv3t.data.preprocessing import ClipPreprocessing
from conv3t.explain.report.options import MissingInput, OptionError
from conv3t.exported import ModelInfo, ModelMeta
from conv3t.models.outputs import logits
from conv3t.runtime import model_device

__all__ = ["ReportClip", "dataset_clips", "predict", "read_clips"]


@dataclass(frozen=True)
class ReportClip:
    """An input clip shown in the report: ``clip`` is the normalised model input ``(3, T, H, W)``; ``label`` its
    true class when known; ``prediction`` / ``probability`` the model's top class and its softmax probability
    (None before :func:`predict`)."""

    name: str
    clip: Tensor
    label: str | None = None
    prediction: str | None = None
    probability: float | None = None


def read_clips(
    info: ModelInfo, videos: Sequence[str | os.PathLike[str]] | None, count: int
) -> tuple[list[ReportClip], str]:
    """``(clips, where they come from)``; without clips the text says why."""
    transforms = ModelMeta.from_info(info).transforms()
    if videos:
        clips = []
        for i, v in enumerate(videos):
            where = f"videos[{i}]"
            try:
                clip = load_video_clip(v, transforms, argument=where)
            except FileNotFoundError as err:  # named as the option: videos[2] ...
                raise MissingInput("videos", str(err).removeprefix("videos")) from None
            except ValueError as err:
                raise OptionError("videos", str(err).removeprefix("videos")) from None
            clips.append(ReportClip(Path(v).name, clip))
        return clips, "the videos given with --video"
    clips, reason = dataset_clips(info, count, transforms)
    if reason and not clips:
        return [], reason
    return clips, f"{len(clips)} clips of the run's own {info.data.get('dataset', '')} validation data"


def dataset_clips(
    info: ModelInfo, count: int, transforms: ClipPreprocessing | None = None
) -> tuple[list[ReportClip], str | None]:
    """A few validation clips of the run's own data, preprocessed as the model's input (``transforms``, default
    the model's own, :meth:`conv3t.exported.ModelMeta.transforms`); ``(clips, reason)``."""
    if not info.data or "dataset" not in info.data:
        return [], "model.json has no data section to regenerate clips from"
    if transforms is None:
        transforms = ModelMeta.from_info(info).transforms()
    items, classes, reason = split_clips(info.data, count, transforms=transforms)
    clips = []
    for i, clip, label in items:
        name = classes[label] if 0 <= label < len(classes) else None
        clips.append(ReportClip(f"val clip {i}", clip, label=name))
    return clips, reason


def predict(model: nn.Module, clips: Sequence[ReportClip], classes: Sequence[str]) -> tuple[ReportClip, ...]:
    """The clips with their top prediction and its probability (softmax); one clip at a time on the model's
    device (any number of ``--video`` files in the memory of one)."""
    device = model_device(model)
    out = []
    for c in clips:
        with torch.no_grad():
            p = torch.softmax(logits(model(c.clip[None].to(device))), dim=1)[0].cpu()
        k = int(p.argmax())
        out.append(replace(c, prediction=classes[k] if k < len(classes) else str(k), probability=float(p[k])))
    return tuple(out)
