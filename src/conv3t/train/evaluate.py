"""Accuracy of a trained model: single-view and multi-view (averaged views) protocols.

Single view: one centre clip, centre crop per video (the validation loader of the data module).
Multi view: ``V`` temporal clips × ``S`` spatial crops per video (the test loader, batches
``(B, V * S, 3, T, H, W)``); the softmax probabilities of the views are averaged before ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from conv3t.train.module import mean_class_accuracy, split_outputs

__all__ = ["EvalResult", "evaluate_model"]


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
) -> EvalResult:
    """Top-1, top-5 and mean class accuracy of ``model`` over ``batches`` of ``(clips, labels)``.

    ``clips`` is ``(B, 3, T, H, W)`` (one view) or ``(B, V, 3, T, H, W)`` (``V`` views, probabilities
    averaged). Samples labelled ``-1`` (unlabelled) are ignored. ``progress(n_batches_done)`` is called after
    each batch.
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
        x, y = batch[0].to(device), torch.as_tensor(batch[1]).to(device)
        if x.ndim == 6:
            b, views = x.shape[:2]
            logits, _ = split_outputs(model(x.flatten(0, 1)))
            probs = logits.float().softmax(-1).view(b, views, -1).mean(1)
        elif x.ndim == 5:
            logits, _ = split_outputs(model(x))
            probs = logits.float().softmax(-1)
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
