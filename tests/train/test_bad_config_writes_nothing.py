"""A bad config is refused before anything is written: ``conv3t train`` creates no run folder, ``conv3t eval`` no
results file, ``conv3t import-authors`` no run folder; each message names the file and the dotted key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from train_helpers import tiny_synthetic

from conv3t.cli import main as cli_main


def _write(path: Path, obj: dict[str, Any]) -> Path:
    path.write_text(json.dumps(obj))  # JSON is YAML
    return path


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"data": {"num_vall": 3}}, "num_vall"),
        ({"model": {"kwargs": {"base_width": 4, "nonsense": 1}}}, "model.kwargs.nonsense"),
        ({"optim": {"lr": -1}}, "optim.lr"),
        # Lightning's "no epoch limit" without a step limit: the schedules had no end, the run died in
        # configure_optimizers after writing config.yaml and logs/
        ({"trainer": {"max_epochs": -1}}, "trainer.max_epochs"),
        ({"trainer": {"max_epochs": 0}}, "trainer.max_epochs"),
    ],
)
def test_train_writes_no_run_folder_for_a_bad_config(tmp_path, capsys, sections, message):
    config = _write(tmp_path / "bad.yaml", tiny_synthetic(**sections))
    out = tmp_path / "run"
    assert cli_main(["train", str(config), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert str(config) in err and message in err, err
    assert not out.exists()


def test_no_epoch_limit_with_a_step_limit_is_a_valid_config():
    from conv3t.train.config import validate_config

    cfg = validate_config(tiny_synthetic(trainer={"max_epochs": -1, "max_steps": 5}))
    assert (cfg.trainer.max_epochs, cfg.trainer.max_steps) == (-1, 5)


def test_eval_with_a_bad_data_file_writes_no_results(tmp_path, capsys):
    from conv3t.exported import ModelInfo, save_exported
    from conv3t.models import create_model

    classes = [f"c{i}" for i in range(9)]
    info = ModelInfo("resnet10_3t", 9, classes, 4, (32, 32), (0.5,) * 3, (0.25,) * 3, {"base_width": 4})
    run = save_exported(create_model("resnet10_3t", 9, base_width=4), tmp_path / "run", info)
    bad = _write(tmp_path / "data.yaml", {"data": {"dataset": "synthetic", "num_vall": 3}})
    out = tmp_path / "results" / "eval.json"
    assert cli_main(["eval", str(run), "--data", str(bad), "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "num_vall" in err, err
    assert not out.exists() and not out.parent.exists() and not (run / "eval.json").exists()


def test_import_authors_with_a_bad_data_file_writes_no_run(tmp_path, capsys):
    bad = _write(tmp_path / "data.yaml", {"data": {"dataset": "jester", "root": "/nowhere", "test_crops": 2}})
    out = tmp_path / "imported"
    argv = ["import-authors", str(tmp_path / "epoch_1"), "--arch", "resnet18_3t", "--classes", "27"]
    assert cli_main([*argv, "--out", str(out), "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "test_crops" in err, err
    assert not out.exists()


def test_eval_refuses_a_model_normalised_otherwise_than_its_datasets(tmp_path, capsys):
    """conv3t eval's datasets normalise with ImageNet's statistics: a model recording others would be fed wrongly
    and read as a (quietly) bad accuracy."""
    from conv3t.exported import ModelInfo, save_exported
    from conv3t.models import create_model

    classes = [f"c{i}" for i in range(9)]
    info = ModelInfo("resnet10_3t", 9, classes, 4, (32, 32), (0.5,) * 3, (0.25,) * 3, {"base_width": 4})
    run = save_exported(create_model("resnet10_3t", 9, base_width=4), tmp_path / "run", info)
    data = _write(tmp_path / "data.yaml", {"data": {"dataset": "synthetic", "num_val": 3, "num_train": 3}})
    out = tmp_path / "results" / "eval.json"
    assert cli_main(["eval", str(run), "--data", str(data), "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(run) in err and "[0.5, 0.5, 0.5]" in err and "ImageNet" in err, err
    assert not out.exists()
