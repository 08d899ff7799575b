"""Sampling mode "whole": every frame of a video, in order (the input of the authors' all-window evaluation)."""

from dataclasses import replace

import numpy as np
from videogen import frame_index

from conv3t.data import JesterDataset
from conv3t.data.jester import JESTER_CLIPS
from conv3t.data.sampling import sample_indices
from conv3t.train.evaluate import whole_video_dataset


def test_whole_mode_returns_every_frame_once():
    assert np.array_equal(sample_indices("whole", 7, 30), np.arange(7)[None])


def test_whole_video_dataset_decodes_all_frames_in_order(jester_root):
    ds = whole_video_dataset(
        JesterDataset(jester_root, "train", clips=replace(JESTER_CLIPS, mode="eval", size=(50, 88)))
    )
    clip, label = ds[3]  # video 104: 50 frames
    assert clip.shape == (3, 50, 50, 88) and label == ds.labels[3]
    raw = whole_video_dataset(
        JesterDataset(jester_root, "train", clips=replace(JESTER_CLIPS, mode="eval"), transform=lambda f, y: (f, y))
    )
    frames, _ = raw[2]  # video 103: 12 frames, shorter than a 30-frame window: not padded
    assert [frame_index(f) for f in frames] == list(range(12))


def test_eval_protocol_paper_counts_windows_of_real_videos(jester_root, tmp_path, capsys):
    import json

    import torch

    from conv3t.cli import main
    from conv3t.data import IMAGENET_MEAN, IMAGENET_STD
    from conv3t.exported import ModelInfo, save_exported
    from conv3t.models import create_model

    torch.manual_seed(0)
    data = {"dataset": "jester", "root": str(jester_root), "num_frames": 30, "size": [32, 32], "batch_size": 2}
    info = ModelInfo(
        model="resnet10_3t",
        num_classes=27,
        classes=JesterDataset(jester_root, "validation").classes,
        num_frames=30,
        size=(32, 32),
        mean=IMAGENET_MEAN,  # what the datasets normalise with (conv3t eval refuses others)
        std=IMAGENET_STD,
        model_kwargs={"base_width": 4},
        data=data,
    )
    run = save_exported(create_model("resnet10_3t", 27, base_width=4), tmp_path / "run", info)
    assert main(["eval", str(run), "--protocol", "paper", "--device", "cpu", "--max-memory", "1GB"]) == 0
    paper = json.loads((run / "eval.json").read_text())["results"]["paper"]
    # validation videos 201 (37 frames: one 30-frame window) and 202 (20 frames: shorter, skipped)
    assert (paper["num_clips"], paper["num_videos"], paper["videos_shorter_than_a_window"]) == (1, 1, 1)
    assert "per-clip top-1" in capsys.readouterr().out
