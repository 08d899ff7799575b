"""``conv3t demo``: the training seed flag and reruns into the folder of a demo that was killed half-way."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conv3t.cli import main as cli_main
from conv3t.commands.demo import DEMO_CONFIG, DEMO_MARKER, _prepare_out, demo_config


def test_seed_sets_the_training_seed_only():
    assert demo_config().seed == 0 == DEMO_CONFIG["seed"]
    cfg = demo_config(seed=2)
    assert cfg.seed == 2
    # the clips stay the same, so seeds are compared on the same validation clips
    assert cfg.data.options["seed"] == demo_config().data.options["seed"]
    assert demo_config(quick=True, seed=1).seed == 1


def test_foreign_folders_are_refused_untouched(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no demo output"):
        _prepare_out(other, 0)
    assert sorted(p.name for p in other.iterdir()) == ["thesis.tex"]
    # a `conv3t train` run has the same files as a half-finished demo, but not the demo's marker
    run = tmp_path / "train-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    with pytest.raises(FileExistsError, match="choose another --out"):
        _prepare_out(run, 0)
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == b"weights"
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        _prepare_out(a_file, 0)


def test_marker_is_written_first_and_partial_output_replaced(tmp_path):
    out = tmp_path / "new" / "demo"
    _prepare_out(out, 3)
    marker = json.loads((out / DEMO_MARKER).read_text())
    assert marker["conv3t_demo"] is True and marker["seed"] == 3
    # what a demo killed during training leaves behind: marker, config, logs, a checkpoint, no summary.json
    (out / "config.yaml").write_text("seed: 3\n")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.ckpt").write_bytes(b"old")
    (out / "logs").mkdir()
    (out / "notes.txt").write_text("the user's")
    _prepare_out(out, 4)
    assert sorted(p.name for p in out.iterdir()) == [DEMO_MARKER, "notes.txt"]
    assert json.loads((out / DEMO_MARKER).read_text())["seed"] == 4


def test_demo_killed_before_summary_can_be_rerun(tmp_path, monkeypatch):
    """The real failure: the report step dies (as a kill would) after training, before summary.json."""
    import conv3t.explain.report as report

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "demo"
    monkeypatch.setattr(report, "build_report", killed)
    with pytest.raises(KeyboardInterrupt):
        cli_main(["demo", "--quick", "--out", str(out)])
    assert (out / "model.safetensors").is_file() and not (out / "summary.json").exists()
    monkeypatch.undo()

    assert cli_main(["demo", "--quick", "--no-report", "--seed", "1", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 1 and summary["quick"] is True
    assert json.loads((out / DEMO_MARKER).read_text())["seed"] == 1


def test_demo_network_starts_with_one_constant_motion_per_channel():
    import torch

    from conv3t.nn import conv3t_layers
    from conv3t.train.module import build_model

    cfg = demo_config(quick=True)
    assert cfg.model.temporal_init_per_channel is True
    torch.manual_seed(0)
    layers = conv3t_layers(build_model(cfg.model, 9), min_depth=2)
    assert layers
    for name, layer in layers:
        for p in (layer.rotation, layer.translation_x, layer.translation_y):
            assert torch.equal(p, p[:, :1].expand_as(p)), name  # the same at every step
            assert p.abs().max() <= cfg.model.temporal_init and p[:, 0].unique().numel() > 1, name
        assert torch.all(layer.scale == 1)
    # without the option every step is drawn on its own (the earlier demo, whose channels went back and forth)
    torch.manual_seed(0)
    per_step = build_model(dataclasses.replace(cfg.model, temporal_init_per_channel=False), 9)
    rot = dict(conv3t_layers(per_step, min_depth=2))["conv1"].rotation
    assert not torch.equal(rot, rot[:, :1].expand_as(rot))
