"""A converted family goes through the whole pipeline: train from a config, export, reload, evaluate."""

from __future__ import annotations

import json

import pytest
import torch

from conv3t.cli import main as cli_main
from conv3t.exported import load_exported
from conv3t.models.conversion import ConvertedModel
from conv3t.nn import conv3t_layers
from conv3t.train.config import validate_config
from conv3t.train.run import train


@pytest.mark.slow
def test_converted_family_trains_exports_and_evaluates(tmp_path, capsys):
    cfg = validate_config(
        {
            "seed": 0,
            "model": {"name": "squeezenet1_1_3t", "pretrained": None, "temporal_init": 0.3},
            "data": {
                "dataset": "synthetic",
                "num_frames": 4,
                "size": 32,
                "batch_size": 6,
                "num_train": 12,
                "num_val": 9,
                "num_test": 9,
            },
            "optim": {"lr": 0.01, "temporal_lr": 0.01},
            "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "log_every_n_steps": 1},
            "logging": {"progress_bar": "none", "tensorboard": False},
        }
    )
    result = train(cfg, tmp_path / "run")
    exported = load_exported(result.run_dir)
    assert exported.info.model == "squeezenet1_1_3t"
    assert isinstance(exported.model, ConvertedModel)
    # the temporal parameters left the identity (temporal_init) and were trained: found by type
    layers = conv3t_layers(exported.model, min_depth=2)
    assert layers and any(bool(layer.rotation.abs().gt(0).any()) for _, layer in layers)
    with torch.no_grad():
        out = exported.model.eval()(torch.randn(2, 3, 4, 32, 32))
    assert out.shape == (2, 9)
    assert cli_main(["eval", str(result.run_dir), "--json", str(tmp_path / "eval.json")]) == 0
    assert 0.0 <= json.loads((tmp_path / "eval.json").read_text())["results"]["single_view"]["top1"] <= 1.0
