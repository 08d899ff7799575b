"""End-to-end training runs on tiny clips: artifacts, export round trip, corrupt checkpoints, every model family
and dataset kind, and the train / eval / demo commands (exact resume after a SIGKILL: test_resilience.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_synthetic

from conv3t.cli import main as cli_main
from conv3t.exported import load_exported
from conv3t.train.checkpoint import CheckpointError, load_checkpoint_file
from conv3t.train.config import load_config, validate_config
from conv3t.train.run import RunDirError, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """One finished 2-epoch run shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = validate_config(tiny_synthetic(cache={"clips": True}))
    return cfg, train(cfg, out)


def test_run_writes_checkpoints_logs_and_export(synthetic_run):
    cfg, result = synthetic_run
    out = result.run_dir
    for name in ("config.yaml", "metrics.json", "confusion_matrix.csv", "confusion_matrix.png", "model.json",
                 "model.safetensors", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):  # fmt: skip
        assert (out / name).is_file(), name
    assert load_config(out / "config.yaml") == cfg
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and metrics["global_step"] == 2 * 3  # 18 clips / batch 6
    assert 0.0 <= metrics["metrics"]["val/top1"] <= 1.0
    with (out / "confusion_matrix.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][1:] == json.loads((out / "model.json").read_text())["classes"]
    counts = [[int(v) for v in row[1:]] for row in rows[1:]]
    assert [sum(r) for r in counts] == [1] * 9  # 9 validation clips, one per class
    top1 = sum(counts[i][i] for i in range(9)) / 9
    assert top1 == pytest.approx(result.metrics["val/top1"])
    log = next((out / "logs").glob("version_*/metrics.csv")).read_text()
    assert "train/loss_step" in log and "val/top1" in log


def test_exported_model_round_trips(synthetic_run):
    cfg, result = synthetic_run
    exported = load_exported(result.run_dir)
    assert exported.info.model == "resnet10_3t" and exported.info.num_frames == 4 and exported.info.size == (32, 32)
    assert exported.info.model_kwargs == cfg.model.kwargs
    best = load_checkpoint_file(result.best_checkpoint)["state_dict"]
    for key, value in exported.model.state_dict().items():
        assert torch.equal(value, best[f"model.{key}"]), key


def test_eval_command_reproduces_validation_accuracy(synthetic_run, capsys):
    _, result = synthetic_run
    assert cli_main(["eval", str(result.run_dir), "--multiview"]) == 0
    report = json.loads((result.run_dir / "eval.json").read_text())["results"]
    assert report["single_view"]["top1"] == pytest.approx(result.metrics["val/top1"])
    assert report["single_view"]["num_videos"] == 9
    assert "multi_view" in report and "top-1" in capsys.readouterr().out


def test_eval_with_another_data_config(synthetic_run, tmp_path, capsys):
    cfg, result = synthetic_run
    data_file = tmp_path / "data.yaml"
    data_file.write_text(json.dumps({**cfg.data.as_mapping(), "num_val": 18}))  # a bare data section (JSON is YAML)
    out = tmp_path / "eval.json"
    argv = ["eval", str(result.run_dir / "model.safetensors"), "--data", str(data_file), "--json", str(out)]
    assert cli_main([*argv, "--data.batch_size", "4"]) == 0
    assert json.loads(out.read_text())["results"]["single_view"]["num_videos"] == 18
    assert cli_main([*argv, "--data.nonsense", "1"]) == 1
    assert "nonsense" in capsys.readouterr().err


def test_eval_takes_the_models_clip_size_where_the_data_file_sets_none(synthetic_run, tmp_path, capsys):
    _, result = synthetic_run
    data_file = tmp_path / "data.yaml"
    data_file.write_text(json.dumps({"data": {"dataset": "synthetic", "num_val": 9, "batch_size": 9}}))
    out = tmp_path / "eval.json"
    assert cli_main(["eval", str(result.run_dir), "--data", str(data_file), "--json", str(out)]) == 0
    recorded = json.loads(out.read_text())["data"]
    assert (recorded["num_frames"], recorded["size"]) == (4, [32, 32])  # the model's, not synthetic's 16 x 112
    assert "note: evaluating on clips of" not in capsys.readouterr().err


def test_resume_from_a_corrupt_checkpoint_names_the_file(tmp_path, capsys):
    cfg = validate_config(tiny_synthetic())
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(500)}}, last)
    last.write_bytes(last.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=f"checkpoint {last} is corrupt or truncated"):
        train(cfg, tmp_path / "run", resume=True)
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(cfg, tmp_path / "empty", resume=True)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(json.dumps(tiny_synthetic()))  # JSON is YAML
    assert cli_main(["train", str(config_file), "--out", str(tmp_path / "run"), "--resume"]) == 1
    assert f"checkpoint {last} is corrupt" in capsys.readouterr().err


def test_train_command_options_and_overrides(tmp_path, capsys):
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(json.dumps(tiny_synthetic()))
    out = tmp_path / "cli"
    argv = ["train", str(config_file), "--trainer.max_epochs", "1", "--out", str(out), "--data.num_train=12"]
    assert cli_main(argv) == 0
    saved = load_config(out / "config.yaml")
    assert saved.trainer.max_epochs == 1 and saved.data.options["num_train"] == 12
    assert "val top-1" in capsys.readouterr().out
    assert cli_main(["train", str(config_file), "--optim.lrr", "1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown config key 'optim.lrr'" in capsys.readouterr().err


def _fixture_overrides(dataset, jester_root, ucf_paths):
    if dataset == "jester":
        return {"data.root": str(jester_root)}
    return {"data.root": str(ucf_paths[0]), "data.annotation_path": str(ucf_paths[1])}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "kwargs"),
    [
        ("resnet18_3t_jester_scratch", {"base_width": 8}),
        ("resnet18_3d_ucf101_imagenet", {"base_width": 8}),
        ("googlenet_3t_ucf101_scratch", {"stem_temporal_stride": 1, "init_weights": False}),
        ("googlenet_3d_jester_imagenet", {"stem_temporal_stride": 1, "init_weights": False}),
    ],
)
def test_paper_configs_train_on_real_format_data(config, kwargs, tmp_path, jester_root, ucf_paths):
    """A fast_dev_run of each model family on each dataset kind, through the shipped config files."""
    dataset = config.split("_")[2]
    overrides = {
        **_fixture_overrides(dataset, jester_root, ucf_paths),
        "model.pretrained": None,
        "model.kwargs": kwargs,
        "data.num_frames": 4,
        "data.size": [32, 32],
        "data.batch_size": 2,
        "data.num_workers": 0,
        "data.test_views": 2,
        "data.test_crops": 3,
        "trainer.fast_dev_run": True,
        "trainer.accelerator": "cpu",
        "trainer.devices": 1,
        "logging.progress_bar": "none",
    }
    cfg = load_config(CONFIGS / f"{config}.yaml", overrides)
    result = train(cfg, tmp_path / config)
    exported = load_exported(tmp_path / config)
    assert exported.info.num_classes == (27 if dataset == "jester" else 3)
    assert "val/top1" in result.metrics
    if dataset == "jester":  # multi-view evaluation of real-format data: 2 clips x 3 crops per video
        assert cli_main(["eval", str(tmp_path / config), "--multiview", "--batch-size", "2"]) == 0
        res = json.loads((tmp_path / config / "eval.json").read_text())["results"]
        assert res["multi_view"]["views_per_video"] == 6 and res["multi_view"]["num_videos"] == 2


def test_demo_quick_path_and_output_folder_rules(tmp_path):
    out = tmp_path / "demo"
    assert cli_main(["demo", "--quick", "--no-report", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "resnet10_3t" and summary["clip"] == {"num_frames": 4, "size": [32, 32]}
    assert 0.0 <= summary["val_top1"] <= 1.0 and summary["train_seconds"] > 0 and summary["quick"] is True
    assert (out / "model.safetensors").is_file() and load_exported(out).info.num_classes == 9
    assert cli_main(["demo", "--quick", "--no-report", "--out", str(out)]) == 0  # a previous demo is replaced
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    assert cli_main(["demo", "--quick", "--no-report", "--out", str(other)]) == 1
    assert (other / "thesis.tex").read_text() == "keep me"


def test_channels_last_forward_matches_contiguous():
    from conv3t.train.module import VideoClassifier

    torch.manual_seed(0)
    plain = VideoClassifier(validate_config(tiny_synthetic()), num_classes=9).eval()
    cl_cfg = validate_config(tiny_synthetic(model={"channels_last_3d": True}))
    fast = VideoClassifier(cl_cfg, num_classes=9, model=plain.model).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(plain(x), fast(x), atol=1e-5)
