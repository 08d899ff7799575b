"""Pictures for the report: clips back to pixels, images tiled into strips, PNGs saved through
:mod:`conv3t.files` (atomic, umask-given mode). Matplotlib figures go through :func:`conv3t.explain.save_figure`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from conv3t.exported import ModelInfo
from conv3t.files import atomic_open

__all__ = ["pixels", "save_png", "tile", "to_uint8"]


def pixels(clip: Tensor, info: ModelInfo) -> Tensor:
    """A normalised model input ``(3, T, H, W)`` back to pixels in ``[0, 1]`` with the model's mean / std."""
    mean = torch.tensor(info.mean, dtype=clip.dtype).view(3, 1, 1, 1)
    std = torch.tensor(info.std, dtype=clip.dtype).view(3, 1, 1, 1)
    return (clip.detach().cpu() * std + mean).clamp(0, 1)


def to_uint8(image: Tensor) -> np.ndarray:
    """``(3, H, W)`` in [0, 1] -> ``(H, W, 3)`` uint8."""
    return (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def tile(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` uint8 images into rows, ``gap`` white pixels apart; short rows end early."""
    h, w, _ = rows[0][0].shape
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = img
    return out


def save_png(array: np.ndarray, path: Path, min_side: int = 96) -> None:
    """Save an ``(H, W, 3)`` uint8 image, enlarged by an integer factor (nearest) to at least ``min_side``."""
    image = Image.fromarray(array)
    factor = max(1, math.ceil(min_side / min(image.size)))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    with atomic_open(path, fsync=False) as handle:
        image.save(handle, format="PNG")
