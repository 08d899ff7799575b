"""The shipped trainer learns: >= 80 % validation top-1 on an easy 3-class task in under 30 s of CPU, one thread.

The data are real files in the UCF101 layout (mpeg4 AVI clips, classInd.txt, fold-1 lists), so the whole
path a user takes runs: config -> data module -> decode -> VideoClassifier -> Lightning -> metrics. The class
is the colour of a square (red, green or blue) that moves in a random direction over a random grey
background; the brightness of square and background varies, so no single pixel decides. A run with a
learning rate too small to move the weights stays near chance (1/3), so the threshold tests learning.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from conv3t.train.config import validate_config
from conv3t.train.run import train

CLASSES = ("RedSquare", "GreenSquare", "BlueSquare")
SIZE, FRAMES, SIDE = 40, 8, 12
TRAIN_PER_CLASS, TEST_PER_CLASS = 24, 10


def _clip(label: int, rng: np.random.Generator) -> np.ndarray:
    """``(FRAMES, SIZE, SIZE, 3)`` uint8: a coloured square drifting over a grey background."""
    grey = rng.integers(60, 140)
    frames = np.full((FRAMES, SIZE, SIZE, 3), grey, dtype=np.uint8)
    colour = np.full(3, rng.integers(20, 60))
    colour[label] = rng.integers(190, 250)
    x, y = rng.integers(0, SIZE - SIDE, 2)
    dx, dy = rng.integers(-2, 3, 2)
    for t in range(FRAMES):
        cx, cy = np.clip([x + dx * t, y + dy * t], 0, SIZE - SIDE)
        frames[t, cy : cy + SIDE, cx : cx + SIDE] = colour
    return frames


def _write_avi(path: Path, frames: np.ndarray) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.options = {"qscale": "2"}  # near-lossless, so colours survive
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


@pytest.fixture(scope="module")
def colour_squares(tmp_path_factory) -> tuple[Path, Path]:
    """UCF101 layout: 3 classes; groups 1-10 are fold 1's test split, groups 11+ its train split."""
    base = tmp_path_factory.mktemp("colour_squares")
    root, ann = base / "videos", base / "lists"
    ann.mkdir()
    (ann / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    rng = np.random.default_rng(0)
    train, test = [], []
    for k, name in enumerate(CLASSES):
        for g in range(1, TEST_PER_CLASS + TRAIN_PER_CLASS + 1):
            rel = f"{name}/v_{name}_g{g:02d}_c01.avi"
            _write_avi(root / rel, _clip(k, rng))
            (test if g <= TEST_PER_CLASS else train).append(f"{rel} {k + 1}" if g > TEST_PER_CLASS else rel)
    (ann / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (ann / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root, ann


def _config(root: Path, ann: Path, lr: float, epochs: int) -> dict:
    return validate_config(
        {
            "seed": 0,
            "model": {"name": "resnet10_3t", "kwargs": {"base_width": 8, "stem_temporal_stride": 1}},
            "data": {
                "dataset": "ucf101",
                "root": str(root),
                "annotation_path": str(ann),
                "num_frames": FRAMES,
                "size": [32, 32],
                "batch_size": 8,
                "num_workers": 0,
            },
            "optim": {"name": "adam", "lr": lr},
            "trainer": {
                "max_epochs": epochs,
                "accelerator": "cpu",
                "devices": 1,
                "log_every_n_steps": 5,
                "num_sanity_val_steps": 0,
                "enable_model_summary": False,
            },
            "checkpoint": {"save_best": False},
            "logging": {"progress_bar": "none", "tensorboard": False, "csv": False},
        },
        source="test_learns",
    )


@pytest.mark.slow
def test_the_trainer_learns_an_easy_task_quickly(colour_squares, tmp_path, one_thread):
    cpu = time.process_time()
    result = train(_config(*colour_squares, lr=3e-3, epochs=6), tmp_path / "learns")
    seconds = time.process_time() - cpu
    top1 = result.metrics["val/top1"]
    assert top1 >= 0.8, f"val top-1 {top1:.2f} after {seconds:.0f} s CPU"
    assert seconds < 30, f"{seconds:.0f} s CPU"
    assert result.metrics["epoch"] == 5  # the final weights, 6 epochs, were validated


@pytest.mark.slow
def test_without_learning_it_stays_near_chance(colour_squares, tmp_path, one_thread):
    # The control for the threshold above: weights that do not move (BatchNorm statistics still adapt).
    result = train(_config(*colour_squares, lr=1e-9, epochs=2), tmp_path / "frozen")
    assert result.metrics["val/top1"] < 0.6
