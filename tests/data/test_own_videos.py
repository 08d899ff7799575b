"""video_list, frame_list and video_folder on real files written here: mp4 / avi / webm / mkv / mov (PyAV)
and JPEG frames (Pillow). Frame i of every video spells i in bars (videogen.grey_frame), so the tests read
back which frames a clip holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from videogen import frame_index, write_frames, write_video

from conv3t.data import DataError, build_datamodule, denormalize

# 48 x 64 frames and 24 x 32 clips: the same aspect ratio, so the eval crop is the whole frame.
CLIP = {"num_frames": 4, "size": [24, 32], "batch_size": 2}
CLASSES = ["cat", "dog", "owl"]


@pytest.fixture(scope="module")
def video_list_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vlist")
    for rel, n in {
        "clips/cat_a.mp4": 30,
        "clips/dog_a.avi": 24,
        "clips/owl_a.webm": 20,
        "clips/cat_b.mkv": 26,
        "clips/dog b.mov": 20,  # a space in the name
        "clips/owl_b.mp4": 28,
        "clips/cat_c.avi": 22,
    }.items():
        write_video(root / rel, n)
    (root / "classes.txt").write_text("cat\ndog\nowl\n")
    (root / "train.txt").write_text(
        "clips/cat_a.mp4 cat\nclips/dog_a.avi dog\n\nclips/owl_a.webm owl\nclips/cat_b.mkv 0\n"
    )
    (root / "val.txt").write_text("# validation\nclips/dog b.mov 1\nclips/owl_b.mp4 owl\n")
    (root / "test.txt").write_text("clips/cat_c.avi cat\n")
    return root


def _lists(root: Path, **extra) -> dict:
    cfg = {
        "dataset": "video_list",
        "root": str(root),
        "train_list": str(root / "train.txt"),
        "val_list": str(root / "val.txt"),
        **CLIP,
    }
    return {**cfg, **extra}


def _frame_numbers(clip: torch.Tensor) -> list[int]:
    """Frame numbers of a normalised clip ``(3, T, H, W)``."""
    pixels = denormalize(clip).clamp(0, 1) * 255
    return [frame_index(pixels[:, t]) for t in range(pixels.shape[1])]


def test_video_list_splits_shapes_labels_and_frames(video_list_root):
    root = video_list_root
    dm = build_datamodule(_lists(root, classes=str(root / "classes.txt")))
    assert dm.classes == CLASSES and dm.num_frames == 4 and dm.size == (24, 32)
    dm.setup("fit")
    assert dm.train_set.labels == [0, 1, 2, 0] and dm.val_set.labels == [1, 2]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 4, 24, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    # val: the centred 4-frame window; dog b.mov has 20 frames -> start (20 - 4) // 2 = 8
    xv, yv = next(iter(dm.val_dataloader()))
    assert (
        yv.tolist() == [1, 2] and _frame_numbers(xv[0]) == [8, 9, 10, 11] and _frame_numbers(xv[1]) == [12, 13, 14, 15]
    )
    # test: its own list, 2 views x 3 crops; views start at the first and the last possible frame
    lists = {"classes": str(root / "classes.txt"), "test_list": str(root / "test.txt")}
    xt, yt = next(iter(build_datamodule(_lists(root, **lists, test_views=2, test_crops=3)).test_dataloader()))
    assert xt.shape == (1, 6, 3, 4, 24, 32) and yt.tolist() == [0]
    assert _frame_numbers(xt[0, 0]) == [0, 1, 2, 3] and _frame_numbers(xt[0, 3]) == [18, 19, 20, 21]


def test_video_list_classes_without_a_classes_file(tmp_path, video_list_root):
    root = video_list_root
    # names and indices mixed: the names are the classes, sorted; index 0 is the first name
    dm = build_datamodule(_lists(root))
    assert dm.classes == CLASSES and dm.make_dataset("train").labels == [0, 1, 2, 0]
    # every label a number: classes "0" .. max
    (tmp_path / "t.txt").write_text("clips/cat_a.mp4 0\nclips/owl_a.webm 4\n")
    (tmp_path / "v.txt").write_text("clips/dog_a.avi 2\n")
    dm = build_datamodule(_lists(root, train_list=str(tmp_path / "t.txt"), val_list=str(tmp_path / "v.txt")))
    assert dm.classes == ["0", "1", "2", "3", "4"] and dm.make_dataset("val").labels == [2]


def test_video_list_bad_lines_name_file_and_line(tmp_path, video_list_root):
    root = video_list_root
    bad = tmp_path / "bad.txt"
    bad.write_text("clips/cat_a.mp4 cat\nclips/dog_a.avi\nclips/owl_a.webm bird\n../x.mp4 cat\nclips/cat_b.mkv 7\n")
    cfg = _lists(root, train_list=str(bad), classes=str(root / "classes.txt"))
    with pytest.raises(DataError) as err:
        build_datamodule(cfg).make_dataset("train")
    text = str(err.value)
    assert "4 problem(s)" in text
    assert f"{bad}:2: cannot parse line 'clips/dog_a.avi': expected '<relative/path.ext> <label>'" in text
    assert f"{bad}:3: label 'bird' is not a class name" in text
    assert f"{bad}:4: path '../x.mp4' must be relative to the root" in text
    assert f"{bad}:5: label 7 is out of range (classes 0..2)" in text
    # on_error: skip keeps the good lines
    ds = build_datamodule({**cfg, "on_error": "skip"}).make_dataset("train")
    assert ds.videos == ["clips/cat_a.mp4"] and ds.labels == [0]
    with pytest.raises(DataError, match=r"nope\.txt: list file is missing"):
        _ = build_datamodule(_lists(root, val_list=str(tmp_path / "nope.txt"))).classes


def test_missing_video_names_the_file(tmp_path, video_list_root):
    (tmp_path / "t.txt").write_text("clips/gone.mp4 cat\n")
    dm = build_datamodule(_lists(video_list_root, train_list=str(tmp_path / "t.txt")))
    with pytest.raises(DataError, match=r"clips/gone\.mp4: video file is missing"):
        dm.make_dataset("train")[0]


@pytest.fixture(scope="module")
def frame_list_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("flist")
    for vid, n in {"walk_01": 12, "run_01": 10, "walk_02": 9, "run_02": 14, "jump/a 1": 8}.items():
        write_frames(root / vid, n)
    (root / "train.txt").write_text("walk_01 12 walk\nrun_01 10 run\njump/a 1 8 jump\n")
    (root / "val.txt").write_text("walk_02 9 2\nrun_02 14 1\n")
    return root


def _frames(root: Path, **extra) -> dict:
    cfg = {"dataset": "frame_list", "root": str(root), "train_list": str(root / "train.txt")}
    return {**cfg, "val_list": str(root / "val.txt"), **CLIP, **extra}


def test_frame_list_splits_shapes_labels_and_frames(frame_list_root):
    dm = build_datamodule(_frames(frame_list_root, test_views=3))
    assert dm.classes == ["jump", "run", "walk"]
    dm.setup()
    assert dm.train_set.videos == ["walk_01", "run_01", "jump/a 1"] and dm.train_set.labels == [2, 1, 0]
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 4, 24, 32)
    xv, yv = next(iter(dm.val_dataloader()))
    # walk_02: 9 frames, centre window starts at (9 - 4) // 2 = 2
    assert yv.tolist() == [2, 1] and _frame_numbers(xv[0]) == [2, 3, 4, 5]
    xt, _ = next(iter(dm.test_dataloader()))  # no test list: the val list, 3 views
    assert xt.shape == (2, 3, 3, 4, 24, 32) and _frame_numbers(xt[1, 2]) == [10, 11, 12, 13]


def test_frame_list_jester_template_and_bad_template(tmp_path):
    write_frames(tmp_path / "v1", 6, template="{:05d}.jpg")
    (tmp_path / "l.txt").write_text("v1 6 a\n")
    cfg = _frames(tmp_path, train_list=str(tmp_path / "l.txt"), val_list=str(tmp_path / "l.txt"))
    dm = build_datamodule({**cfg, "frame_template": "{:05d}.jpg"})
    assert _frame_numbers(dm.make_dataset("val")[0][0]) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"frame_template 'img\.jpg' must give each frame its own file name"):
        build_datamodule({**cfg, "frame_template": "img.jpg"})
    with pytest.raises(ValueError, match="must name JPEG files"):
        build_datamodule({**cfg, "frame_template": "{:05d}.png"})
    # the default template does not match Jester's names: the missing frame is named
    with pytest.raises(DataError, match=r"v1/img_00002\.jpg: cannot read file"):
        build_datamodule(cfg).make_dataset("val")[0]


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vfolder")
    for rel, n in {
        "train/cat/a.mp4": 20,
        "train/cat/b.webm": 16,
        "train/dog/c.avi": 18,
        "train/owl/d.mov": 22,
        "val/dog/e.mkv": 20,
        "val/cat/f.mp4": 12,
        "test/owl/g.avi": 30,
    }.items():
        write_video(root / rel, n)
    (root / "train/cat/notes.txt").write_text("not a video\n")
    (root / "train/.DS_Store").write_text("")
    return root


def test_video_folder_splits_shapes_labels(folder_root):
    dm = build_datamodule(
        {"dataset": "video_folder", "root": str(folder_root), **CLIP, "test_crops": 3, "test_views": 1}
    )
    assert dm.classes == CLASSES
    dm.setup()
    assert dm.train_set.videos == ["train/cat/a.mp4", "train/cat/b.webm", "train/dog/c.avi", "train/owl/d.mov"]
    assert dm.train_set.labels == [0, 0, 1, 2] and dm.val_set.labels == [0, 1]
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 4, 24, 32)
    xv, yv = next(iter(dm.val_dataloader()))
    assert yv.tolist() == [0, 1] and _frame_numbers(xv[0]) == [4, 5, 6, 7]  # f.mp4: 12 frames
    xt, yt = next(iter(dm.test_dataloader()))
    assert xt.shape == (1, 3, 3, 4, 24, 32) and yt.tolist() == [2] and _frame_numbers(xt[0, 1]) == [13, 14, 15, 16]


def test_video_folder_errors(tmp_path):
    write_video(tmp_path / "train/cat/a.avi", 8)
    write_video(tmp_path / "val/bird/b.avi", 8)
    dm = build_datamodule({"dataset": "video_folder", "root": str(tmp_path), **CLIP})
    with pytest.raises(DataError, match=r"val/bird: class folder 'bird' is not in .*train"):
        dm.make_dataset("val")
    with pytest.raises(DataError, match=r"nope/train: split folder is missing"):
        _ = build_datamodule({"dataset": "video_folder", "root": str(tmp_path / "nope")}).classes
