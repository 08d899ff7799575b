"""Helpers shared by the training tests (imported by module name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any


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
