from dataclasses import replace

import pytest
import torch
from videogen import UCF_CLASSES, frame_index

from conv3t.data import DataError, UCF101Dataset, VideoReadError
from conv3t.data.decode import VideoFile
from conv3t.data.ucf101 import UCF101_CLIPS


def raw(frames, label):
    return frames, label


def test_default_item_is_paper_sized(ucf_paths):
    root, ann = ucf_paths
    ds = UCF101Dataset(root, ann, fold=1, train=True)
    assert ds.classes == UCF_CLASSES and len(ds) == 3
    assert ds.videos[0] == "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi"
    assert ds.labels == [0, 1, 2]  # classInd is 1-based, conv3t 0-based
    clip, label = ds[1]
    assert clip.shape == (3, 30, 168, 224) and clip.dtype == torch.float32 and label == 1


def test_testlist_labels_come_from_the_folder(ucf_paths):
    root, ann = ucf_paths
    ds = UCF101Dataset(root, ann, train=False)
    assert ds.labels == [0, 1, 2] and ds.mode == "eval"
    assert all(v.endswith("_g01_c01.avi") for v in ds.videos)


def test_seeking_returns_the_right_frames(ucf_paths):
    root, _ = ucf_paths
    with VideoFile("v", root / "Basketball/v_Basketball_g02_c01.avi") as video:
        assert video.num_frames == 67 and video.fps == 25
        for idx in ([0, 1, 2], [40, 41, 66], [66], [20, 5, 20], list(range(67))):
            assert [frame_index(f) for f in video.read(idx)] == idx


def test_eval_window_and_stride(ucf_paths):
    root, ann = ucf_paths
    ds = UCF101Dataset(root, ann, clips=replace(UCF101_CLIPS, mode="eval", frame_stride=2), train=True, transform=raw)
    frames, _ = ds[1]  # Basketball g02: 67 frames; stride 2 needs 59, start (67 - 59) // 2 = 4
    assert frames.shape == (30, 3, 240, 320)
    assert [frame_index(f) for f in frames] == list(range(4, 63, 2))


def test_short_video_is_padded(ucf_paths):
    root, ann = ucf_paths
    ds = UCF101Dataset(root, ann, clips=replace(UCF101_CLIPS, num_frames=40, mode="eval"), train=True, transform=raw)
    numbers = [frame_index(f) for f in ds[2][0]]  # YoYo g02: 31 frames
    assert numbers == list(range(31)) + [30] * 9


def test_multiview_three_crops(ucf_paths):
    root, ann = ucf_paths
    ds = UCF101Dataset(
        root,
        ann,
        clips=replace(UCF101_CLIPS, num_frames=4, size=(56, 56), mode="multiview", temporal_views=2, spatial_crops=3),
        train=False,
    )
    clip, _ = ds[0]
    assert clip.shape == (6, 3, 4, 56, 56)
    assert not torch.allclose(clip[0], clip[2])  # left and right squares of a 4:3 frame differ
    one = UCF101Dataset(
        root,
        ann,
        clips=replace(UCF101_CLIPS, num_frames=4, size=(56, 56), mode="multiview", temporal_views=1),
        train=False,
    )
    assert one[0][0].shape == (1, 3, 4, 56, 56)  # multiview items always have the view axis


@pytest.mark.parametrize(
    ("index", "file", "reason"),
    [
        (1, "v_Basketball_g09_c01.avi", "video file is missing"),
        (2, "v_Basketball_g02_c01.avi", "truncated: header says 60 frames"),
        (3, "v_Basketball_g03_c01.avi", "cannot open video"),
    ],
)
def test_bad_videos_raise_with_video_and_file(broken_ucf, index, file, reason):
    root, ann = broken_ucf
    ds = UCF101Dataset(
        root, ann, clips=replace(UCF101_CLIPS, num_frames=30, size=(32, 32), mode="eval", on_error="skip")
    )
    ds.on_error = "raise"
    vid = ds.videos[index]
    with pytest.raises(VideoReadError, match=reason) as info:
        ds[index]
    assert info.value.video == vid and info.value.path.endswith(file)


def test_bad_annotation_lines(broken_ucf):
    root, ann = broken_ucf
    with pytest.raises(DataError) as info:
        UCF101Dataset(root, ann)
    msg = str(info.value)
    assert "trainlist01.txt:2: label 2 (Basketball) disagrees with folder 'YoYo'" in msg
    assert "trainlist01.txt:6: class folder 'Nope' is not in classInd.txt" in msg
    assert "trainlist01.txt:7: cannot parse line 'this line has too many parts'" in msg
    assert "trainlist01.txt:9: label 7 is not in classInd.txt (1..3)" in msg


def test_skip_mode_keeps_going(broken_ucf):
    root, ann = broken_ucf
    ds = UCF101Dataset(
        root, ann, clips=replace(UCF101_CLIPS, num_frames=30, size=(32, 32), mode="eval", on_error="skip")
    )
    assert len(ds) == 5  # four bad lines dropped
    labels = [ds[i][1] for i in range(len(ds))]
    assert labels == [0, 2, 2, 2, 2]  # bad 1, 2, 3 fall through to index 4 (YoYo g03)
    assert ds.skipped.count == 3 + 2 + 1


def test_missing_fold_file(ucf_paths):
    root, ann = ucf_paths
    with pytest.raises(DataError, match=r"trainlist02\.txt: annotation file is missing"):
        UCF101Dataset(root, ann, fold=2)
    with pytest.raises(ValueError, match="fold"):
        UCF101Dataset(root, ann, fold=4)
