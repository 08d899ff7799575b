"""Fixtures: real-format Jester and UCF101 datasets, clean and broken (see videogen.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from videogen import (
    BROKEN_JESTER_TRAIN,
    BROKEN_UCF_TRAIN,
    JESTER_CLASSES,
    JESTER_LENGTHS,
    JESTER_SPLITS,
    UCF_CLASSES,
    UCF_LENGTHS,
    make_jester,
    make_ucf101,
    write_avi,
    write_jester_video,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Data loading runs one thread per worker; on a busy 2-core machine more threads only contend."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def jester_root(tmp_path_factory) -> Path:
    """A clean Jester root in the official layout (27 official classes, 8 videos)."""
    return make_jester(tmp_path_factory.mktemp("jester"), JESTER_LENGTHS, JESTER_SPLITS)


@pytest.fixture(scope="session")
def ucf_paths(tmp_path_factory) -> tuple[Path, Path]:
    """A clean UCF101 ``(root, annotation_path)`` with 3 classes × 2 videos (320×240 mpeg4 AVI)."""
    return make_ucf101(tmp_path_factory.mktemp("ucf"), UCF_LENGTHS)


# ---- datasets with every kind of problem -------------------------------------------------------
@pytest.fixture(scope="session")
def broken_jester(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jester_broken")
    (root / "jester-v1-labels.csv").write_text("\n".join(JESTER_CLASSES) + "\n")
    (root / "jester-v1-train.csv").write_text("\n".join(BROKEN_JESTER_TRAIN) + "\n")
    (root / "jester-v1-validation.csv").write_text("ok2;Swiping Left\n")
    (root / "jester-v1-test.csv").write_text("ok3\n")
    frames = root / "20bn-jester-v1"
    for vid, n in (("ok1", 20), ("ok2", 15), ("ok3", 18), ("trunc", 12), ("garbage", 12)):
        write_jester_video(frames, vid, n)
    (frames / "empty").mkdir()
    write_jester_video(frames, "gap", 0, numbers=[1, 2, 3, 4, 5, 7, 8, 9, 10])
    data = (frames / "trunc" / "00005.jpg").read_bytes()
    (frames / "trunc" / "00005.jpg").write_bytes(data[: len(data) // 2])
    (frames / "garbage" / "00003.jpg").write_text("this is not a picture\n")
    write_jester_video(frames, "unlisted", 5)
    return root


@pytest.fixture(scope="session")
def broken_ucf(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("ucf_broken")
    root, ann = base / "UCF-101", base / "ucfTrainTestlist"
    ann.mkdir()
    (ann / "classInd.txt").write_text("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(UCF_CLASSES)))
    (ann / "trainlist01.txt").write_text("".join(f"{line}\r\n" for line in BROKEN_UCF_TRAIN))
    (ann / "testlist01.txt").write_text("YoYo/v_YoYo_g01_c01.avi\r\n")
    for rel, n in (
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi", 30),
        ("YoYo/v_YoYo_g02_c01.avi", 30),
        ("YoYo/v_YoYo_g03_c01.avi", 30),
        ("YoYo/v_YoYo_g01_c01.avi", 30),
        ("Basketball/v_Basketball_g02_c01.avi", 60),
    ):
        write_avi(root / rel, n)
    trunc = root / "Basketball/v_Basketball_g02_c01.avi"
    data = trunc.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    (root / "Basketball/v_Basketball_g03_c01.avi").write_text("not a video at all\n")
    return root, ann
