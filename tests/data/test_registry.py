"""The dataset registry: lookups, options from each kind's own fields, label maps, labels for pages."""

from __future__ import annotations

import pytest

from conv3t.data import (
    MOTION_CLASSES,
    create_source,
    dataset_names,
    dataset_options,
    describe_data,
    get_dataset,
)
from conv3t.data.registry import REQUIRED


def test_every_kind_is_registered_with_its_own_options():
    assert {"synthetic", "jester", "ucf101", "video_list", "frame_list", "video_folder"} <= set(dataset_names())
    assert dataset_options("video_folder")["root"] is REQUIRED
    assert dataset_options("frame_list")["frame_template"] == "img_{:05d}.jpg"
    assert dataset_options("ucf101")["flip"] is True and dataset_options("jester")["flip"] is False
    assert dataset_options("jester")["size"] == (150, 224) and dataset_options("ucf101")["size"] == (168, 224)
    assert dataset_options("synthetic")["num_frames"] == 16 and "test_views" not in dataset_options("synthetic")
    with pytest.raises(ValueError, match=r"got 'ucf' \(did you mean 'ucf101'\?\)"):
        get_dataset("ucf")


def test_synthetic_label_maps_by_hand():
    source = create_source("synthetic", {"task": "motion"})
    assert source.class_names() == list(MOTION_CLASSES)
    # left<->right (0, 1), up<->down (2, 3), cw<->ccw (4, 5), zoom in<->out (6, 7); static (8) stays
    assert source.reverse_label_map() == {0: 1, 1: 0, 2: 3, 3: 2, 4: 5, 5: 4, 6: 7, 7: 6}
    # a mirror swaps left/right and the sense of rotation, nothing else
    assert source.flip_label_map() == {0: 1, 1: 0, 4: 5, 5: 4}
    assert create_source("synthetic", {"task": "appearance"}).reverse_label_map() == {}
    assert create_source("video_folder", {"root": "x"}).reverse_label_map() is None  # not label-safe
    with pytest.raises(ValueError, match=r"data\.task must be one of"):
        create_source("synthetic", {"task": "colour"}).class_names()


def test_clip_options_are_checked():
    with pytest.raises(ValueError, match=r"data\.test_crops must be 1 or 3, got 2"):
        create_source("video_folder", {"root": "x", "test_crops": 2})
    with pytest.raises(ValueError, match=r"data.size must be an int or \[H, W\]"):
        create_source("video_folder", {"root": "x", "size": [1, 2, 3]})
    assert create_source("video_folder", {"root": "x", "size": 48}).size == (48, 48)


def test_describe_data_reads_no_file():
    assert describe_data({"dataset": "synthetic", "task": "appearance"}) == "synthetic appearance"
    assert describe_data({"dataset": "synthetic"}) == "synthetic motion"
    assert describe_data({"dataset": "jester", "root": "/nowhere", "batch_size": 4}) == "jester"
    assert describe_data({"dataset": "kinetics"}) == "kinetics"  # a kind not installed here
    assert describe_data({}) == "unknown data"


def test_clip_options_of_a_source_are_one_frozen_value_per_split():
    import dataclasses

    from conv3t.data import ClipOptions

    source = create_source(
        "video_folder", {"root": "x", "num_frames": 8, "size": [32, 48], "frame_stride": 2, "test_views": 3}
    )
    train, val, test = (source.clip_options(s) for s in ("train", "val", "test"))
    assert isinstance(val, ClipOptions)
    assert (train.mode, val.mode, test.mode) == ("train", "eval", "multiview")
    assert val == ClipOptions(num_frames=8, mode="eval", frame_stride=2, size=(32, 48), temporal_views=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        val.num_frames = 4  # type: ignore[misc]
    # a YAML list or an int becomes the (H, W) tuple the transforms compare
    assert ClipOptions(size=[20, 30]).size == (20, 30) and ClipOptions(size=20).size == (20, 20)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pad", "mirror", "pad must be one of"),
        ("mode", "random", "mode must be one of"),
        ("num_frames", 0, "num_frames must be >= 1"),
        ("on_error", "ignore", "on_error must be one of"),
        ("spatial_crops", 2, "spatial_crops must be 1 or 3"),
    ],
)
def test_clip_options_refuse_bad_values_by_name(field, value, message):
    from conv3t.data import ClipOptions

    with pytest.raises(ValueError, match=message):
        ClipOptions(**{field: value})
