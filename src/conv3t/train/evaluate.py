"""Accuracy of a trained model: single-view, multi-view (averaged views) and the authors' all-window protocols.

Single view: one centre clip, centre crop per video (the validation loader of the data module).
Multi view: ``V`` temporal clips × ``S`` spatial crops per video (the test loader, batches
``(B, V * S, 3, T, H, W)``); the softmax probabilities of the views are averaged before ranking.
All windows (:func:`evaluate_windows`, the authors' reported number): every non-overlapping window of
``num_frames`` frames of each video is a clip, videos shorter than one window are skipped; per-clip top-1
(theirs) and per-video top-1 (softmax averaged over the video's windows) side by side.

Memory: the clips of a batch go through the network ``chunk`` at a time (``None``: all at once), so a
multi-view batch of ``B x V x S`` paper-size clips does not hold the activations of all of them together; the
command sizes ``chunk`` from a memory budget (``conv3t eval --max-memory``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from conv3t.data.base import VideoClipDataset
from conv3t.train.module import mean_class_accuracy, split_outputs

__all__ = ["EvalResult", "WindowsResult", "evaluate_model", "evaluate_windows", "whole_video_dataset", "window_starts"]


@dataclass
class EvalResult:
    """Accuracies as fractions in [0, 1]; ``confusion`` ``(C, C)`` counts, rows = true class."""

    top1: float
    top5: float
    mean_class_acc: float
    num_videos: int
    views: int
    confusion: Tensor

    def as_dict(self) -> dict[str, Any]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "mean_class_acc": self.mean_class_acc,
            "num_videos": self.num_videos,
            "views_per_video": self.views,
        }


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    batches: Iterable[Any],
    num_classes: int,
    device: str | torch.device = "cpu",
    limit_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int | None = None,
) -> EvalResult:
    """Top-1, top-5 and mean class accuracy of ``model`` over ``batches`` of ``(clips, labels)``.

    ``clips`` is ``(B, 3, T, H, W)`` (one view) or ``(B, V, 3, T, H, W)`` (``V`` views, probabilities
    averaged). Samples labelled ``-1`` (unlabelled) are ignored. ``progress(n_batches_done)`` is called after
    each batch. ``chunk``: clips per forward (the batch's ``B`` or ``B * V`` clips are moved to ``device`` and
    run ``chunk`` at a time); ``None`` runs each batch in one forward.
    """
    model.eval().to(device)
    k = min(5, num_classes)
    top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro").to(device)
    top5 = MulticlassAccuracy(num_classes, top_k=k, average="micro").to(device)
    confusion = MulticlassConfusionMatrix(num_classes).to(device)
    seen, views = 0, 1
    for i, batch in enumerate(batches):
        if limit_batches is not None and i >= limit_batches:
            break
        x, y = batch[0], torch.as_tensor(batch[1]).to(device)
        if x.ndim == 6:
            b, views = x.shape[:2]
            probs = _probabilities(model, x.flatten(0, 1), device, chunk).view(b, views, -1).mean(1)
        elif x.ndim == 5:
            probs = _probabilities(model, x, device, chunk)
        else:
            raise ValueError(f"clips must be (B, 3, T, H, W) or (B, V, 3, T, H, W), got shape {tuple(x.shape)}")
        keep = y >= 0
        if bool(keep.any()):
            top1.update(probs[keep], y[keep])
            top5.update(probs[keep], y[keep])
            confusion.update(probs[keep], y[keep])
            seen += int(keep.sum())
        if progress is not None:
            progress(i + 1)
    if seen == 0:
        raise ValueError("no labelled samples to evaluate")
    conf = confusion.compute().cpu()
    return EvalResult(
        top1=float(top1.compute()),
        top5=float(top5.compute()),
        mean_class_acc=mean_class_accuracy(conf),
        num_videos=seen,
        views=int(views),
        confusion=conf,
    )


def _probabilities(model: nn.Module, clips: Tensor, device: str | torch.device, chunk: int | None) -> Tensor:
    """Softmax ``(N, C)`` (float32, on ``device``) of ``clips`` ``(N, 3, T, H, W)``, ``chunk`` clips per forward."""
    step = clips.shape[0] if chunk is None else max(1, int(chunk))
    out = [
        split_outputs(model(clips[i : i + step].to(device)))[0].float().softmax(-1)
        for i in range(0, clips.shape[0], step)
    ]
    return torch.cat(out) if len(out) > 1 else out[0]


def window_starts(length: int, num_frames: int, stride: int = 1) -> list[int]:
    """Starts of the non-overlapping windows of ``num_frames`` frames ``stride`` apart in ``length`` frames.

    A window covers ``(num_frames - 1) * stride + 1`` frames; the next one starts ``num_frames * stride`` later
    (the authors' DALI reader: ``step = sequence_length``). ``[]`` when the video is shorter than one window.
    """
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1, got {num_frames} and {stride}")
    extent = (num_frames - 1) * stride + 1
    return list(range(0, length - extent + 1, num_frames * stride))


def whole_video_dataset(dataset: Dataset) -> Dataset:
    """``dataset`` (a split of a data module) switched to whole videos: items ``(3, N, H, W)`` of all frames.

    File-backed datasets (:class:`~conv3t.data.base.VideoClipDataset`) decode every frame (sampling mode
    ``"whole"``) with the split's own spatial transform; other datasets (synthetic clips) are returned as they
    are, each item then being one window.
    """
    if isinstance(dataset, VideoClipDataset):
        dataset.mode = "whole"
    return dataset


@dataclass
class WindowsResult:
    """The all-window protocol: accuracies as fractions in [0, 1] and what they were counted over."""

    clip_top1: float
    num_clips: int
    video_top1: float
    num_videos: int
    skipped_short: int
    num_frames: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "clip_top1": self.clip_top1,
            "num_clips": self.num_clips,
            "video_top1": self.video_top1,
            "num_videos": self.num_videos,
            "videos_shorter_than_a_window": self.skipped_short,
            "window_frames": self.num_frames,
        }


@dataclass
class _Tally:
    """Running counts of :func:`evaluate_windows`."""

    clips: int = 0
    correct_clips: int = 0
    skipped: int = 0
    sums: dict[int, Tensor] = field(default_factory=dict)
    labels: dict[int, int] = field(default_factory=dict)

    def add(self, video: int, label: int, probs: Tensor) -> None:
        self.clips += 1
        self.correct_clips += int(int(probs.argmax()) == label)
        self.sums[video] = self.sums[video] + probs if video in self.sums else probs.clone()
        self.labels[video] = label


@torch.no_grad()
def evaluate_windows(
    model: nn.Module,
    videos: Iterable[tuple[Tensor, int]],
    num_frames: int,
    frame_stride: int = 1,
    device: str | torch.device = "cpu",
    chunk: int = 8,
    limit_videos: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> WindowsResult:
    """The authors' protocol: every non-overlapping window of every video, streamed ``chunk`` clips at a time.

    Args:
        videos: ``(video, label)`` items, ``video`` ``(3, N, H, W)`` (all frames, e.g. from
            :func:`whole_video_dataset`); labels ``-1`` (unlabelled) are left out.
        num_frames, frame_stride: the window (see :func:`window_starts`).
        chunk: clips per forward; at most ``chunk`` windows (and the videos they come from) are held at once.

    Returns:
        A :class:`WindowsResult`: per-clip top-1 over all windows (the authors' number, counted exactly) and
        per-video top-1 of the softmax averaged over each video's windows.
    """
    model.eval().to(device)
    extent = (num_frames - 1) * frame_stride + 1
    tally, pending = _Tally(), []  # pending: (window (3, T, H, W), video number, label)

    def flush() -> None:
        probs = _probabilities(model, torch.stack([w for w, _, _ in pending]), device, None).cpu()
        for (_, video, label), p in zip(pending, probs):
            tally.add(video, label, p)
        pending.clear()

    for i, (video, label) in enumerate(videos):
        if limit_videos is not None and i >= limit_videos:
            break
        label = int(label)
        if video.ndim != 4:
            raise ValueError(f"videos must be (3, N, H, W), got shape {tuple(video.shape)} (item {i})")
        starts = window_starts(video.shape[1], num_frames, frame_stride)
        if label >= 0 and not starts:
            tally.skipped += 1
        for start in starts if label >= 0 else []:
            pending.append((video[:, start : start + extent : frame_stride], i, label))
            if len(pending) >= chunk:
                flush()
        if progress is not None:
            progress(i + 1)
    if pending:
        flush()
    if tally.clips == 0:
        raise ValueError(f"no labelled video has {extent} frames or more: nothing to evaluate")
    correct_videos = sum(int(int(s.argmax()) == tally.labels[v]) for v, s in tally.sums.items())
    return WindowsResult(
        clip_top1=tally.correct_clips / tally.clips,
        num_clips=tally.clips,
        video_top1=correct_videos / len(tally.sums),
        num_videos=len(tally.sums),
        skipped_short=tally.skipped,
        num_frames=num_frames,
    )
