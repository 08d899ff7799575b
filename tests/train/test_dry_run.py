"""``conv3t train --dry-run``: every paper-protocol config is accepted on a (tiny) real-format dataset, the
report holds what a user checks before queueing a job, a missing data root fails like ``conv3t data check``,
and Jester's validation list splits into the documented halves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from train_helpers import JESTER_CLASSES, write_jester

from conv3t.cli import main as cli_main
from conv3t.data.jester import JESTER_CLIPS, JesterDataset
from conv3t.train.dry_run import steps_per_epoch

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIGS = sorted((REPO / "configs" / "paper").glob("*.yaml"))
VAL_IDS = [f"2{i}" for i in range(5)]  # 5 validation videos: halves of 2 and 3


@pytest.fixture(scope="module")
def jester_all_classes(tmp_path_factory) -> Path:
    """Jester layout with one training video per class (inverse-frequency weights need every class)."""
    train = [(f"1{i:02d}", c) for i, c in enumerate(JESTER_CLASSES)] + [("199", JESTER_CLASSES[-1])]
    val = [(v, JESTER_CLASSES[i]) for i, v in enumerate(VAL_IDS)]
    return write_jester(tmp_path_factory.mktemp("jester_all"), train, val, lambda k: 3, (20, 32), 80)


def _data_args(config: Path, jester: Path, ucf: tuple[Path, Path]) -> list[str]:
    if "_jester_" in config.name:
        return ["--data.root", str(jester)]
    return ["--data.root", str(ucf[0]), "--data.annotation_path", str(ucf[1])]


def test_there_is_one_paper_config_per_table_cell():
    names = {p.stem for p in PAPER_CONFIGS}
    archs, data = ("resnet18", "googlenet"), ("jester", "ucf101")
    table1 = {f"{a}_{k}_{d}_imagenet" for a in archs for k in ("3t", "3d") for d in data}
    table3 = {f"{a}_3t_{d}_scratch" for a in archs for d in data}
    assert names == table1 | table3


@pytest.fixture
def online_without_downloads(tmp_path, monkeypatch) -> list:
    """Downloads allowed (an empty torch hub cache), but any download attempt is recorded instead of made."""
    import torch

    import conv3t.models.transfer as transfer

    seen: list = []
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("CONV3T_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(transfer, "_download_weights", lambda *a: seen.append(a))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: seen.append(a))
    return seen


@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_dry_run_accepts_every_paper_config(
    config, jester_all_classes, ucf_paths, tmp_path, capsys, online_without_downloads
):
    out = tmp_path / "run"
    data = _data_args(config, jester_all_classes, ucf_paths)
    rc = cli_main(["train", str(config), "--dry-run", "--out", str(out), *data])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert not out.exists()  # nothing written
    assert "resolved config:" in text and "lr: 5.0e-0" in text
    assert " trainable parameters" in text and "steps per epoch:" in text and f"outputs: {out}/" in text
    # what their code ran: a constant rate (their halving never reached Adam); the intended plateau is an override
    assert "schedule: constant, warm-up 0 epoch(s)" in text
    assert "early stopping: paper" in text
    assert "init=authors" in text  # N(0, 1) 2D filters, PyTorch defaults elsewhere
    if "imagenet" in config.name:
        assert "transfer=conv_only" in text
    if config.name.startswith("googlenet"):
        assert "style: authors" in text
    if "_jester_" in config.name:
        # 28 training clips; batch 32 (ResNet18) or 19/20 (GoogLeNet) on 1 device, last partial batch dropped
        assert "data: 28 training clips, 2 validation clips" in text  # val = the first half of 5
        assert "class weights (inverse_frequency):" in text
    if "_3d_" in config.name:
        assert "inflate=mean" in text
    elif "imagenet" in config.name:
        assert "inflate=repeat" in text
    if "imagenet" in config.name:
        assert "not cached: the run downloads https://download.pytorch.org/models/" in text
    assert online_without_downloads == []  # a dry run downloads nothing


def test_paper_config_with_the_intended_plateau_schedule(jester_all_classes, ucf_paths, tmp_path, capsys):
    config = REPO / "configs" / "paper" / "resnet18_3t_jester_scratch.yaml"
    data = _data_args(config, jester_all_classes, ucf_paths)
    argv = ["train", str(config), "--dry-run", "--out", str(tmp_path / "r"), *data, "--sched.name", "plateau"]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "schedule: plateau on val/top1, x0.5 after 0 epochs without improvement, checked every 10 epoch(s)" in text


def test_dry_run_offline_without_cached_weights_fails_naming_the_file(ucf_paths, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache; CONV3T_OFFLINE=1 from tests/conftest.py
    config = REPO / "configs" / "paper" / "resnet18_3d_ucf101_imagenet.yaml"
    rc = cli_main(["train", str(config), "--dry-run", *_data_args(config, tmp_path, ucf_paths)])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{tmp_path}/hub/checkpoints/resnet18-f37072fd.pth (NOT cached and downloads are off" in err
    assert "the run could not get its initial weights" in err


def test_dry_run_with_a_missing_data_root_fails_like_data_check(tmp_path, capsys):
    config = REPO / "configs" / "paper" / "resnet18_3t_jester_imagenet.yaml"
    missing = tmp_path / "no_such_jester"
    rc = cli_main(["train", str(config), "--dry-run", "--data.root", str(missing)])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{missing}/jester-v1-labels.csv: annotation file is missing" in err
    assert f"{missing}/20bn-jester-v1: frames folder is missing" in err
    assert "the data check failed" in err


def test_steps_per_epoch_by_hand():
    assert steps_per_epoch(118562, 32, 1) == (3705, 3705)  # 118562 // 32, the last 2 clips dropped
    assert steps_per_epoch(100, 8, 4, accumulate=2) == (3, 2)  # 25 clips per process -> 3 batches -> 2 steps
    assert steps_per_epoch(5, 8, 1) == (1, 1)  # fewer clips than a batch: one partial batch


def test_jester_validation_halves_are_disjoint_and_in_file_order(jester_all_classes):
    kw = {"clips": replace(JESTER_CLIPS, num_frames=2, size=(16, 16))}
    whole = JesterDataset(jester_all_classes, "validation", **kw)
    first = JesterDataset(jester_all_classes, "validation", half=0, **kw)
    second = JesterDataset(jester_all_classes, "validation", half=1, **kw)
    assert whole.videos == VAL_IDS
    assert first.videos == VAL_IDS[:2] and second.videos == VAL_IDS[2:]  # floor(5 / 2) = 2 first
    with pytest.raises(ValueError, match="half must be None, 0 or 1"):
        JesterDataset(jester_all_classes, "validation", half=2, **kw)


def test_jester_source_uses_the_halves_for_val_and_test_only_when_asked(jester_all_classes):
    from conv3t.data import build_datamodule

    base = {"dataset": "jester", "root": str(jester_all_classes), "num_frames": 2, "size": [16, 16]}
    halves = build_datamodule({**base, "val_test_halves": True})
    plain = build_datamodule(base)
    for dm in (halves, plain):
        dm.setup(None)
    assert halves.val_set.videos == VAL_IDS[:2] and halves.test_set.videos == VAL_IDS[2:]
    assert plain.val_set.videos == VAL_IDS and plain.test_set.videos == VAL_IDS
    assert len(halves.train_set) == len(plain.train_set) == 28
    with pytest.raises(ValueError, match=r"data\.val_test_halves must be true or false"):
        build_datamodule({**base, "val_test_halves": "yes"})
