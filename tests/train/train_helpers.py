"""Helpers shared by the training tests (imported by module name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

JESTER_CLASSES = [
    "Swiping Left", "Swiping Right", "Swiping Down", "Swiping Up", "Pushing Hand Away", "Pulling Hand In",
    "Sliding Two Fingers Left", "Sliding Two Fingers Right", "Sliding Two Fingers Down", "Sliding Two Fingers Up",
    "Pushing Two Fingers Away", "Pulling Two Fingers In", "Rolling Hand Forward", "Rolling Hand Backward",
    "Turning Hand Clockwise", "Turning Hand Counterclockwise", "Zooming In With Full Hand",
    "Zooming Out With Full Hand", "Zooming In With Two Fingers", "Zooming Out With Two Fingers", "Thumb Up",
    "Thumb Down", "Shaking Hand", "Stop Sign", "Drumming Fingers", "No gesture", "Doing other things",
]  # fmt: skip
UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def frame(i: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = rng.integers(40, 120, 3)
    x = (4 * i + seed) % max(1, w - 8)
    img[h // 3 : h // 3 + 8, x : x + 8] = 230
    return img


def write_jester(
    root: Path,
    train: list[tuple[str, str]],
    val: list[tuple[str, str]],
    frames_of: Callable[[int], int],
    size: tuple[int, int],
    quality: int,
) -> Path:
    """A Jester layout under ``root``: the label/train/validation/test CSV files and one JPEG frame folder per
    video (``frames_of(k)`` frames of ``size = (h, w)`` for the k-th video; test video ``31`` last)."""
    (root / "jester-v1-labels.csv").write_text("\n".join(JESTER_CLASSES) + "\n")
    (root / "jester-v1-train.csv").write_text("".join(f"{v};{c}\n" for v, c in train))
    (root / "jester-v1-validation.csv").write_text("".join(f"{v};{c}\n" for v, c in val))
    (root / "jester-v1-test.csv").write_text("31\n")
    h, w = size
    for k, (vid, _) in enumerate([*train, *val, ("31", None)]):
        folder = root / "20bn-jester-v1" / vid
        folder.mkdir(parents=True)
        for i in range(frames_of(k)):
            Image.fromarray(frame(i, h, w, k)).save(folder / f"{i + 1:05d}.jpg", quality=quality)
    return root


def tiny_synthetic(**sections: dict[str, Any]) -> dict[str, Any]:
    """A raw (unvalidated) config: resnet10_3t of width 4 on 4-frame 32x32 synthetic clips, 2 epochs."""
    cfg: dict[str, Any] = {
        "seed": 0,
        "model": {"name": "resnet10_3t", "kwargs": {"base_width": 4, "stem_temporal_stride": 1}},
        "data": {
            "dataset": "synthetic",
            "num_frames": 4,
            "size": 32,
            "batch_size": 6,
            "num_train": 18,
            "num_val": 9,
            "num_test": 9,
        },
        "optim": {"lr": 0.01},
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "log_every_n_steps": 1},
        "logging": {"progress_bar": "none", "tensorboard": False},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg
