import logging
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from videogen import BROKEN_JESTER_TRAIN, JESTER_CLASSES, frame_index

from conv3t.data import DataError, JesterDataset, VideoReadError
from conv3t.data.jester import JESTER_CLIPS


def raw(frames, label):
    """Identity transform: keep the decoded uint8 frames."""
    return frames, label


def test_default_item_is_paper_sized_and_normalised(jester_root):
    ds = JesterDataset(jester_root, "train")
    assert len(ds) == 5 and ds.num_classes == 27 and ds.classes == JESTER_CLASSES
    clip, label = ds[0]
    assert clip.shape == (3, 30, 150, 224) and clip.dtype == torch.float32
    assert label == 0  # Swiping Left
    assert ds.labels == [0, 1, 14, 20, 6]
    assert clip.min() < -1.5 and clip.max() > 1.5  # dark (30) and bright (225) bars, normalised


def test_eval_takes_the_centre_window(jester_root):
    ds = JesterDataset(jester_root, "train", clips=replace(JESTER_CLIPS, mode="eval"), transform=raw)
    frames, _ = ds[3]  # video 104: 50 frames, centre window starts at 10
    assert frames.dtype == torch.uint8 and frames.shape == (30, 3, 100, 176)
    assert [frame_index(f) for f in frames] == list(range(10, 40))


def test_train_window_is_random_and_contiguous(jester_root):
    ds = JesterDataset(jester_root, "train", clips=replace(JESTER_CLIPS, num_frames=8), transform=raw)
    torch.manual_seed(0)
    starts = set()
    for _ in range(12):
        numbers = [frame_index(f) for f in ds[3][0]]
        assert np.all(np.diff(numbers) == 1)
        starts.add(numbers[0])
    assert len(starts) > 3


def test_frame_stride(jester_root):
    ds = JesterDataset(
        jester_root, "train", clips=replace(JESTER_CLIPS, num_frames=10, mode="eval", frame_stride=4), transform=raw
    )
    numbers = [frame_index(f) for f in ds[3][0]]  # 50 frames, span 37, start 6
    assert numbers == list(range(6, 43, 4))


def test_short_video_repeats_its_last_frame(jester_root):
    ds = JesterDataset(jester_root, "train", clips=replace(JESTER_CLIPS, mode="eval"), transform=raw)
    numbers = [frame_index(f) for f in ds[2][0]]  # video 103: 12 frames
    assert numbers == list(range(12)) + [11] * 18
    loop = JesterDataset(jester_root, "train", clips=replace(JESTER_CLIPS, mode="eval", pad="loop"), transform=raw)
    assert [frame_index(f) for f in loop[2][0]] == [i % 12 for i in range(30)]


def test_multiview_items(jester_root):
    ds = JesterDataset(
        jester_root,
        "validation",
        clips=replace(JESTER_CLIPS, num_frames=8, size=(32, 48), mode="multiview", temporal_views=4, spatial_crops=3),
    )
    clip, label = ds[0]
    assert clip.shape == (12, 3, 8, 32, 48) and label == 0


def test_validation_and_unlabeled_test_split(jester_root):
    val = JesterDataset(jester_root, "validation")
    assert val.videos == ["201", "202"] and val.labels == [0, 23]
    assert val.mode == "eval"
    test = JesterDataset(jester_root, "test", clips=replace(JESTER_CLIPS, num_frames=4, size=(32, 48)))
    assert test.labels == [-1] and test[0][1] == -1


def test_annotation_and_frames_folders_apart(jester_root, tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    for f in jester_root.glob("*.csv"):
        shutil.copy(f, ann)
    ds = JesterDataset(
        None,
        "validation",
        clips=replace(JESTER_CLIPS, num_frames=4, size=(32, 48)),
        annotation_dir=ann,
        frames_dir=jester_root / "20bn-jester-v1",
    )
    assert ds[1][0].shape == (3, 4, 32, 48)
    with pytest.raises(ValueError, match="annotation_dir and frames_dir"):
        JesterDataset(None, "validation", annotation_dir=ann)


def test_flip_swaps_jester_labels(jester_root):
    ds = JesterDataset(jester_root, "train", clips=replace(JESTER_CLIPS, num_frames=4, size=(32, 48), flip=True))
    ds.transform.flip.p = 1.0
    assert [ds[i][1] for i in range(5)] == [1, 0, 15, 20, 7]
    assert JesterDataset(jester_root, "train").transform.flip.p == 0.0  # off by default


@pytest.mark.parametrize(
    ("index", "file", "reason"),
    [
        (1, "20bn-jester-v1/missing", "frame folder is missing"),
        (2, "20bn-jester-v1/empty", "no numbered .jpg"),
        (3, "trunc/00005.jpg", "truncated"),
        (4, "garbage/00003.jpg", "not a JPEG"),
        (5, "20bn-jester-v1/gap", "missing frame numbers 6"),
    ],
)
def test_raise_names_video_and_file(broken_jester, index, file, reason):
    ds = JesterDataset(
        broken_jester, "train", clips=replace(JESTER_CLIPS, num_frames=12, size=(32, 48), mode="eval", on_error="skip")
    )
    ds.on_error = "raise"  # annotation lines were dropped above; now raise on videos
    vid = ds.videos[index]
    with pytest.raises(VideoReadError, match=reason) as info:
        ds[index]
    assert info.value.video == vid and info.value.path.endswith(file)
    assert repr(vid) in str(info.value)


def test_bad_annotation_lines_raise_with_file_and_line(broken_jester):
    with pytest.raises(DataError) as info:
        JesterDataset(broken_jester, "train")
    msg = str(info.value)
    assert "jester-v1-train.csv:7: cannot parse line 'badline'" in msg
    assert "jester-v1-train.csv:8: label 'Jumping Jacks' is not in the labels file" in msg


def test_skip_mode_skips_counts_and_logs_once(broken_jester, caplog):
    # eval mode and 12 frames: every frame of the bad videos is read, every time
    ds = JesterDataset(
        broken_jester, "train", clips=replace(JESTER_CLIPS, num_frames=12, size=(32, 48), mode="eval", on_error="skip")
    )
    assert len(ds) == len(BROKEN_JESTER_TRAIN) - 2  # the two bad lines are dropped
    with caplog.at_level(logging.WARNING, logger="conv3t.data"):
        items = [ds[i] for i in range(len(ds))] + [ds[1]]
    assert all(c.shape == (3, 12, 32, 48) for c, _ in items)
    # index 1 (missing) .. 5 (gap) are bad and each falls through to ok1 at index 0 (wrapping)
    assert [y for _, y in items] == [0] * 7
    # 1st pass: 1..5 skip 5, 4, 3, 2, 1 bad videos; then index 1 again skips 5
    assert ds.skipped.count == 20
    warned = [r.getMessage() for r in caplog.records if "skipping bad sample" in r.getMessage()]
    assert len(warned) == 5 and all(any(f"'{v}'" in m for m in warned) for v in ds.videos[1:])
    assert ds.skipped.reset() == 20 and ds.skipped.count == 0


def test_skip_count_is_shared_with_loader_workers(broken_jester):
    ds = JesterDataset(
        broken_jester, "train", clips=replace(JESTER_CLIPS, num_frames=12, size=(16, 24), mode="eval", on_error="skip")
    )
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert sum(len(b[1]) for b in batches) == len(ds)
    assert ds.skipped.count == 15  # 5 + 4 + 3 + 2 + 1, counted in the worker processes


def test_too_many_bad_videos_in_a_row(broken_jester):
    ds = JesterDataset(
        broken_jester,
        "train",
        clips=replace(JESTER_CLIPS, num_frames=12, size=(16, 24), mode="eval", on_error="skip", max_skips=2),
    )
    with pytest.raises(DataError, match="3 bad videos in a row"):
        ds[1]
