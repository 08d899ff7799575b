import logging
from types import SimpleNamespace

import pytest
import torch

from conv3t.data import (
    SkippedSamplesReport,
    SyntheticMotionDataset,
    VideoDataModule,
    build_datamodule,
    data_config_keys,
)


def test_synthetic_datamodule_from_config():
    cfg = {
        "dataset": "synthetic",
        "num_frames": 8,
        "size": [32, 32],
        "batch_size": 4,
        "num_train": 10,
        "num_val": 6,
        "task": "motion",
        "seed": 3,
    }
    dm = build_datamodule(cfg)
    assert dm.num_classes == 9 and dm.classes[0] == "translate_left"
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 8, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(dm.train_dataloader()) == 2  # drop_last: 10 // 4
    assert [b[0].shape[0] for b in dm.val_dataloader()] == [4, 2]
    # splits are different clips; the train split is SyntheticMotionDataset(seed=3)
    assert torch.equal(dm.train_set[0][0], SyntheticMotionDataset(10, 8, 32, seed=3)[0][0])
    assert not torch.equal(dm.train_set[0][0], dm.val_set[0][0])
    test = dm.test_dataloader()
    assert next(iter(test))[0].shape == (4, 3, 8, 32, 32)


def test_unknown_config_keys_are_named():
    with pytest.raises(ValueError, match=r"unknown config key 'data\.batchsize' \(did you mean 'batch_size'\?\)"):
        build_datamodule({"dataset": "synthetic", "batchsize": 4, "frames": 8})
    with pytest.raises(ValueError, match="needs 'dataset'"):
        build_datamodule({"batch_size": 4})
    with pytest.raises(ValueError, match=r"data\.dataset must be one of .* got 'jestr' \(did you mean 'jester'\?\)"):
        build_datamodule({"dataset": "jestr"})
    with pytest.raises(ValueError, match=r"data\.root is required"):
        build_datamodule({"dataset": "jester"})
    # a key of another dataset kind: says whose it is
    with pytest.raises(ValueError, match=r"'data\.fold' \(an option of ucf101\)"):
        build_datamodule({"dataset": "jester", "root": "/x", "fold": 2})
    assert {
        "dataset",
        "num_frames",
        "size",
        "batch_size",
        "num_workers",
        "num_train",
        "num_val",
        "task",
        "seed",
    } <= set(data_config_keys("synthetic"))
    assert {"root", "annotation_path", "frames_dir", "test_views", "test_crops"} <= set(data_config_keys("jester"))
    assert "num_train" not in data_config_keys("jester") and "root" not in data_config_keys("synthetic")


def test_jester_datamodule_batches(jester_root):
    dm = build_datamodule(
        {
            "dataset": "jester",
            "root": str(jester_root),
            "num_frames": 6,
            "size": [30, 40],
            "batch_size": 2,
            "test_views": 3,
            "test_crops": 3,
        }
    )
    assert dm.num_classes == 27 and not dm.source.flip
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 6, 30, 40) and y.tolist() != [-1, -1]
    assert dm.val_set.mode == "eval" and len(dm.val_set) == 2
    xt, yt = next(iter(dm.test_dataloader()))  # validation videos, 3 views × 3 crops
    assert xt.shape == (2, 9, 3, 6, 30, 40) and yt.tolist() == [0, 23]


def test_ucf101_datamodule_batches(ucf_paths):
    root, ann = ucf_paths
    dm = VideoDataModule("ucf101", root=root, annotation_path=ann, num_frames=4, size=42, batch_size=3)
    assert dm.num_classes == 3 and dm.source.flip and dm.size == (42, 42) and dm.num_frames == 4
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (3, 3, 4, 42, 42) and y.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="annotation_path"):
        VideoDataModule("ucf101", root=root)


def test_skipped_samples_report(broken_jester, caplog):
    dm = VideoDataModule("jester", root=broken_jester, num_frames=12, size=(16, 16), on_error="skip")
    dm.setup("fit")
    dm.train_set.mode = "eval"
    dm.train_set.transform.mode = "eval"
    for i in range(len(dm.train_set)):
        dm.train_set[i]
    logged = {}
    module = SimpleNamespace(log=lambda name, value, **kw: logged.__setitem__(name, value))
    trainer = SimpleNamespace(datamodule=dm, current_epoch=2, sanity_checking=False)
    cb = SkippedSamplesReport()
    with caplog.at_level(logging.WARNING, logger="conv3t.data"):
        cb.on_train_epoch_end(trainer, module)
        cb.on_validation_epoch_end(trainer, module)
    assert cb.history == [(2, "train", 15), (2, "val", 0)]
    assert logged == {"data/skipped_train": 15.0, "data/skipped_val": 0.0}
    assert "epoch 2: skipped 15 bad train sample(s)" in caplog.text
    assert dm.skipped_counts() == {"train": 0, "val": 0}  # reset after the report
