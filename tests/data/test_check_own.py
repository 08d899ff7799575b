"""`conv3t data check` on video_list, frame_list and video_folder data with planted problems."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from videogen import write_frames, write_video

from conv3t.cli import main
from conv3t.data import check_data_config


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _assert_problems(report, expected: list[str]) -> None:
    text = [str(p) for p in report.problems]
    for e in expected:
        assert any(t.startswith(e) for t in text), (e, text)
    assert len(text) == len(expected), text


@pytest.fixture(scope="module")
def broken_video_list(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("vlist_broken")
    for rel in ("clips/ok.mp4", "clips/ok2.webm", "clips/ok3.mov", "clips/extra.mp4"):
        write_video(root / rel, 12)
    write_video(root / "clips/trunc.avi", 60)
    _truncate(root / "clips/trunc.avi")
    (root / "clips/garbage.mkv").write_text("not a video at all\n")
    (root / "classes.txt").write_text("cat\ndog\n")
    (root / "train.txt").write_text(
        "clips/ok.mp4 cat\n"  # 1 ok
        "clips/missing.mp4 cat\n"  # 2 no such file
        "clips/trunc.avi dog\n"  # 3 truncated
        "clips/garbage.mkv dog\n"  # 4 not a video
        "only_a_path\n"  # 5 no label
        "clips/ok2.webm bird\n"  # 6 not a class
    )
    (root / "val.txt").write_text("clips/ok.mp4 cat\nclips/ok3.mov 1\n")  # 1: also in train
    return {
        "dataset": "video_list",
        "root": str(root),
        "train_list": str(root / "train.txt"),
        "val_list": str(root / "val.txt"),
        "classes": str(root / "classes.txt"),
    }


def test_video_list_check_reports_each_planted_problem(broken_video_list):
    root, train, val = (Path(broken_video_list[k]) for k in ("root", "train_list", "val_list"))
    report = check_data_config(broken_video_list)
    _assert_problems(
        report,
        [
            f"{train}:5: cannot parse line 'only_a_path'",
            f"{train}:6: label 'bird' is not a class name",
            f"{val}:1: 'clips/ok.mp4' is also listed at train.txt:1 (a video in two splits)",
            f"{root}/clips/missing.mp4: video file is missing (listed at train.txt:2)",
            f"{root}/clips/trunc.avi: truncated: header says 60 frames",
            f"{root}/clips/garbage.mkv: cannot open video",
        ],
    )
    assert report.videos_ok == 2 and report.videos_bad == 3
    assert report.unlisted == ["clips/extra.mp4", "clips/ok2.webm"]
    assert check_data_config(broken_video_list, decode=True).problems == report.problems


def test_frame_list_check_reports_each_missing_or_bad_frame(tmp_path):
    root = tmp_path
    for vid, n in {"ok": 8, "missing_frame": 8, "trunc": 8, "notjpeg": 6, "short": 6, "extra": 3}.items():
        write_frames(root / vid, n)
    (root / "missing_frame/img_00003.jpg").unlink()
    _truncate(root / "trunc/img_00005.jpg")
    (root / "notjpeg/img_00002.jpg").write_text("text\n")
    (root / "train.txt").write_text("ok 8 a\nmissing_frame 8 a\ntrunc 8 b\nnofolder 5 b\nnotjpeg 6 a\nbad x a\n")
    (root / "val.txt").write_text("ok 8 a\nshort 8 b\n")
    (root / "test.txt").write_text("ok 8 a\n")  # the same video in val and test: reported once more
    cfg = {"dataset": "frame_list", "root": str(root), "train_list": str(root / "train.txt")}
    report = check_data_config({**cfg, "val_list": str(root / "val.txt")})
    _assert_problems(
        report,
        [
            f"{root / 'train.txt'}:6: cannot parse line 'bad x a': num_frames 'x' is not >= 1",
            f"{root / 'val.txt'}:1: 'ok' is also listed at train.txt:1",
            f"{root}/missing_frame/img_00003.jpg: frame file is missing (listed at train.txt:2)",
            f"{root}/trunc/img_00005.jpg: truncated JPEG (no end-of-image marker) (listed at train.txt:3)",
            f"{root}/nofolder: frame folder is missing (listed at train.txt:4)",
            f"{root}/notjpeg/img_00002.jpg: not a JPEG file",
            f"{root}/short/img_00007.jpg: frame file is missing (listed at val.txt:2)",
            f"{root}/short/img_00008.jpg: frame file is missing (listed at val.txt:2)",
        ],
    )
    assert report.videos_ok == 1 and report.videos_bad == 5 and report.unlisted == ["extra"]
    assert report.frame_counts == [8]


def test_video_folder_check(tmp_path):
    root = tmp_path
    for rel in ("train/cat/ok.mp4", "train/stray.mp4", "val/cat/v.webm", "val/bird/x.mp4"):
        write_video(root / rel, 10)
    write_video(root / "train/cat/trunc.avi", 60)
    _truncate(root / "train/cat/trunc.avi")
    (root / "train/dog").mkdir()
    (root / "train/dog/bad.mov").write_text("nope\n")
    (root / "train/dog/readme.txt").write_text("about the dogs\n")
    report = check_data_config({"dataset": "video_folder", "root": str(root)})
    _assert_problems(
        report,
        [
            f"{root}/val/bird: class folder 'bird' is not in {root}/train",
            f"{root}/train/cat/trunc.avi: truncated: header says 60 frames",
            f"{root}/train/dog/bad.mov: cannot open video",
        ],
    )
    assert report.videos_ok == 2 and report.videos_bad == 2
    assert report.unlisted == ["train/dog/readme.txt", "train/stray.mp4"]
    write_video(root / "noval/train/cat/a.avi", 4)
    missing = check_data_config({"dataset": "video_folder", "root": str(root / "noval")})
    assert [str(p) for p in missing.problems] == [f"{root}/noval/val: split folder is missing"]
    nothing = check_data_config({"dataset": "video_folder", "root": str(root / "nothing")})
    assert [str(p) for p in nothing.problems] == [f"{root}/nothing/train: split folder is missing"]


def test_cli_check_config(broken_video_list, tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text(
        yaml.safe_dump({"model": {"name": "resnet10_3t"}, "data": {**broken_video_list, "batch_size": 4}})
    )
    assert main(["data", "check", "--config", str(config), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "train.txt:5: cannot parse line 'only_a_path'" in out and "3 bad; 6 problem(s)" in out
    assert "2 folder(s)/file(s) on disk not in any list:\n  clips/extra.mp4\n  clips/ok2.webm" in out

    good = dict(broken_video_list, train_list=str(tmp_path / "t.txt"), val_list=str(tmp_path / "t.txt"))
    (tmp_path / "t.txt").write_text("clips/ok.mp4 0\n")
    config.write_text(yaml.safe_dump({"data": good}))
    assert main(["data", "check", "--config", str(config), "--no-progress"]) == 0
    assert "video_list: 1 listed videos, 1 ok, 0 bad; 0 problem(s)" in capsys.readouterr().out

    config.write_text(yaml.safe_dump({"data": {**good, "train_lst": "x"}}))
    assert main(["data", "check", "--config", str(config)]) == 2
    assert "unknown config key 'data.train_lst' (did you mean 'train_list'?)" in capsys.readouterr().err
    assert main(["data", "check", "--config", str(tmp_path / "none.yaml")]) == 2
    assert main(["data", "check"]) == 2
    assert "give --config CONFIG.yaml, or --dataset" in capsys.readouterr().err


def test_synthetic_has_nothing_to_check(capsys, tmp_path):
    config = tmp_path / "s.yaml"
    config.write_text("data:\n  dataset: synthetic\n  num_train: 4\n")
    assert main(["data", "check", "--config", str(config), "--no-progress"]) == 0
    assert "synthetic: nothing on disk to check" in capsys.readouterr().out
