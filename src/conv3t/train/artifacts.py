"""Files a finished run leaves behind: confusion matrix (CSV + PNG), exported weights, metrics JSON."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from conv3t import files
from conv3t.exported import ModelInfo, save_exported
from conv3t.files import atomic_write
from conv3t.models import architecture_kwargs
from conv3t.train.schema import ExperimentConfig

__all__ = ["export_model", "model_info", "write_confusion_matrix", "write_json"]


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Pretty JSON, written atomically."""
    return files.write_json(obj, path)


def write_confusion_matrix(
    confusion: Tensor, classes: Sequence[str], directory: str | os.PathLike[str], title: str = ""
) -> tuple[Path, Path]:
    """Write ``confusion_matrix.csv`` and ``confusion_matrix.png`` to ``directory``.

    ``confusion`` is ``(C, C)`` counts, rows = true class, columns = predicted class. The CSV has a header row
    ``true\\predicted, <class names>`` and one row per true class. The figure shows row-normalised rates (each
    row sums to 1), annotated with the counts when there are at most 30 classes.
    """
    directory = Path(directory)
    conf = confusion.detach().cpu().to(torch.int64)
    n = conf.shape[0]
    if conf.shape != (n, n) or len(classes) != n:
        raise ValueError(f"confusion matrix {tuple(conf.shape)} does not match {len(classes)} classes")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["true\\predicted", *classes])
    for name, row in zip(classes, conf.tolist()):
        writer.writerow([name, *row])
    csv_path = directory / "confusion_matrix.csv"
    atomic_write(csv_path, buf.getvalue().encode())

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rates = conf.double() / conf.sum(dim=1, keepdim=True).clamp(min=1).double()
    side = max(4.0, min(24.0, 0.35 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    fontsize = 8 if n <= 30 else 4
    ax.set_xticklabels(classes, rotation=90, fontsize=fontsize)
    ax.set_yticklabels(classes, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if conf[i, j]:
                    colour = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, str(int(conf[i, j])), ha="center", va="center", fontsize=fontsize, color=colour)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    total = int(conf.sum())
    acc = float(conf.diagonal().sum()) / total if total else float("nan")
    ax.set_title(f"{title}  top-1 {acc:.1%} of {total} clips".strip())
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    png_path = directory / "confusion_matrix.png"
    atomic_write(png_path, png.getvalue())
    return csv_path, png_path


def model_info(config: ExperimentConfig, classes: Sequence[str], num_frames: int, size: Sequence[int]) -> ModelInfo:
    """The ``model.json`` description of a model trained with ``config``."""
    from conv3t.data import IMAGENET_MEAN, IMAGENET_STD, get_dataset

    model_cfg = config.model
    kwargs = dict(model_cfg.kwargs)
    if "aux_logits" in architecture_kwargs(model_cfg.name):
        kwargs.setdefault("aux_logits", model_cfg.aux_logits)
    return ModelInfo(
        model=model_cfg.name,
        num_classes=len(classes),
        classes=list(classes),
        num_frames=int(num_frames),
        size=(int(size[0]), int(size[1])),
        mean=tuple(IMAGENET_MEAN),
        std=tuple(IMAGENET_STD),
        model_kwargs=kwargs,
        data=config.data.as_mapping(),
        fps=get_dataset(config.data.dataset).fps,
    )


def export_model(model: nn.Module, directory: str | os.PathLike[str], info: ModelInfo) -> Path:
    """Write ``model.safetensors`` + ``model.json`` (see :mod:`conv3t.exported`)."""
    return save_exported(model, directory, info)
