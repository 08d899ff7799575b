"""Fixtures for the training tests: tiny real-format datasets and tiny experiment configs.

Jester: JPEG frame folders (Pillow) with the official CSV files and all 27 class names.
UCF101: mpeg4 AVI files (PyAV) with classInd.txt and the fold-1 lists.
Frames are small flat-colour images with a moving bright square, so decoding is quick.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import UCF_CLASSES, frame, write_jester


@pytest.fixture(scope="session")
def jester_root(tmp_path_factory) -> Path:
    """Jester layout: 4 train videos, 2 validation videos (12-20 frames of 64x36 px)."""
    train = [("11", "Swiping Left"), ("12", "Swiping Right"), ("13", "Thumb Up"), ("14", "Stop Sign")]
    val = [("21", "Swiping Left"), ("22", "Thumb Up")]
    return write_jester(tmp_path_factory.mktemp("jester_train"), train, val, lambda k: 12 + 2 * k, (36, 64), 90)


def _write_avi(path: Path, n: int, seed: int, size: tuple[int, int] = (64, 48)) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame(i, h, w, seed), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="session")
def ucf_paths(tmp_path_factory) -> tuple[Path, Path]:
    """UCF101 layout ``(root, annotation_path)``: 3 classes x 2 videos; g01 = test, g02 = train (fold 1)."""
    base = tmp_path_factory.mktemp("ucf_train")
    root, ann = base / "UCF-101", base / "ucfTrainTestlist"
    ann.mkdir()
    (ann / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    train, test = [], []
    for k, c in enumerate(UCF_CLASSES):
        for g in (1, 2):
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            _write_avi(root / rel, 14 + k, seed=10 * k + g)
            (test if g == 1 else train).append(rel)
    (ann / "trainlist01.txt").write_text("".join(f"{r} {UCF_CLASSES.index(r.split('/')[0]) + 1}\n" for r in train))
    (ann / "testlist01.txt").write_text("".join(f"{r}\n" for r in test))
    return root, ann
