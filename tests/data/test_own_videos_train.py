"""`conv3t train` and `conv3t eval --multiview` on each of video_list, frame_list and video_folder, from the
configs exactly as docs/training.md prints them (made tiny by overrides), on files laid out as it describes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from videogen import write_frames, write_video

from conv3t.cli import main as cli_main
from conv3t.exported import load_exported
from conv3t.train.config import load_config
from conv3t.train.run import train

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"

TINY = {
    "model.name": "resnet10_3t",
    "model.pretrained": None,
    "model.kwargs": {"base_width": 4, "stem_temporal_stride": 1},
    "data.num_frames": 4,
    "data.size": [32, 32],
    "data.batch_size": 2,
    "data.num_workers": 0,
    "trainer.max_epochs": 1,
    "trainer.accelerator": "cpu",
    "trainer.devices": 1,
    "trainer.log_every_n_steps": 1,
    "logging.progress_bar": "none",
    "logging.tensorboard": False,
}


def documented_config(name: str) -> str:
    """The YAML block of docs/training.md's "Your own videos" section that starts with ``# name``."""
    text = DOCS.read_text()
    section = text[text.index("## Your own videos") :]
    section = section[: section.index("\n## ", 1)]
    for block in re.findall(r"```yaml\n(.*?)```", section, flags=re.S):
        if block.startswith(f"# {name}\n"):
            return block
    raise AssertionError(f"docs/training.md shows no config {name}")


def _video_list_files(base: Path) -> None:
    root = base / "my_videos"
    root.mkdir()
    (root / "classes.txt").write_text("cat\ndog\n")
    train = ["clips/cat_01.mp4 cat", "clips/dog_01.avi dog", "clips/cat_03.mkv 0", "clips/dog_03.mov 1"]
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "val.txt").write_text("clips/cat_02.webm 0\nclips/dog_02.mp4 dog\n")
    for line in [*train, "clips/cat_02.webm 0", "clips/dog_02.mp4 dog"]:
        write_video(root / line.split()[0], 10)


def _frame_list_files(base: Path) -> None:
    root = base / "my_frames"
    for vid in ("walk_01", "run_01", "walk_02", "run_02", "run_07", "walk_07", "walk_09"):
        write_frames(root / vid, 8)
    (root / "train.txt").write_text("walk_01 8 walk\nrun_01 8 run\nwalk_02 8 walk\nrun_02 8 0\n")
    (root / "val.txt").write_text("run_07 8 0\nwalk_07 8 1\n")
    (root / "test.txt").write_text("walk_09 8 walk\n")


def _video_folder_files(base: Path) -> None:
    for rel in ("train/cat/a.mp4", "train/cat/b.avi", "train/dog/c.webm", "train/dog/d.mov", "val/cat/e.mkv"):
        write_video(base / "my_clips" / rel, 10)
    write_video(base / "my_clips/val/dog/f.mp4", 10)


@pytest.mark.parametrize(
    ("name", "make", "classes"),
    [
        ("my_video_list.yaml", _video_list_files, ["cat", "dog"]),
        ("my_frame_list.yaml", _frame_list_files, ["run", "walk"]),
        ("my_video_folder.yaml", _video_folder_files, ["cat", "dog"]),
    ],
)
def test_train_and_eval_from_the_documented_config(name, make, classes, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the documented paths are relative to where conv3t runs
    make(tmp_path)
    config = tmp_path / name
    config.write_text(documented_config(name))
    assert yaml.safe_load(config.read_text())["data"]["dataset"] == name[3:-5]
    assert cli_main(["data", "check", "--config", str(config), "--no-progress"]) == 0
    result = train(load_config(config, TINY), tmp_path / "run")
    assert "val/top1" in result.metrics
    exported = load_exported(tmp_path / "run")
    assert exported.info.classes == classes and exported.info.data["dataset"] == name[3:-5]
    # eval re-opens the data from model.json (relative paths: same folder) and runs the multi-view protocol
    assert cli_main(["eval", str(tmp_path / "run"), "--multiview", "--views", "2", "--crops", "3"]) == 0
    res = json.loads((tmp_path / "run" / "eval.json").read_text())["results"]
    assert res["single_view"]["num_videos"] == 2
    assert res["multi_view"]["views_per_video"] == 6
    assert res["multi_view"]["num_videos"] == (1 if name == "my_frame_list.yaml" else 2)  # frame_list: test.txt
    capsys.readouterr()
