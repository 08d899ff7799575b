"""``conv3t import-authors``: an authors'-layout checkpoint becomes a run that ``eval`` and ``explain`` accept."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from conv3t.cli import main
from conv3t.data import build_datamodule
from conv3t.exported import load_exported
from conv3t.models import create_model

from .authors_layout import authors_checkpoint, randomise_

# tiny synthetic clips; GoogLeNet in the authors' style needs at least 13 x 61 x 61
DATA = {
    "resnet18": {"dataset": "synthetic", "num_frames": 8, "size": 32, "task": "motion", "num_val": 4, "seed": 0},
    "googlenet": {"dataset": "synthetic", "num_frames": 13, "size": 64, "task": "motion", "num_val": 4, "seed": 0},
}


def _checkpoint(tmp_path, arch: str) -> tuple[object, dict]:
    family = arch.split("_")[0]
    data = dict(DATA[family], batch_size=2, num_workers=0)
    classes = build_datamodule(data).classes
    kwargs = {"style": "authors"} if family == "googlenet" else {}
    reference = create_model(f"{family}_3d", len(classes), **kwargs).double()
    randomise_(reference, torch.Generator().manual_seed(1))
    state = {k: v.float() for k, v in authors_checkpoint(reference, arch, torch.Generator().manual_seed(2)).items()}
    torch.save(state, tmp_path / "epoch_4")
    (tmp_path / "labels.txt").write_text("\n".join(classes) + "\n")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"data": data}))
    return reference.eval(), data


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18_3t", "resnet18_3d", "googlenet_3t", "googlenet_3d"])
def test_import_then_eval_and_explain(tmp_path, arch, capsys, one_thread):
    reference, data = _checkpoint(tmp_path, arch)
    run = tmp_path / "run"
    size = [str(data["size"])] * 2
    argv = ["import-authors", str(tmp_path / "epoch_4"), "--arch", arch, "--labels", str(tmp_path / "labels.txt")]
    argv += ["--out", str(run), "--frames", str(data["num_frames"]), "--size", *size]
    argv += ["--data", str(tmp_path / "data.yaml")]
    assert main(argv) == 0
    assert "tensors mapped" in capsys.readouterr().err
    exported = load_exported(run)
    clip = torch.randn(1, 3, data["num_frames"], data["size"], data["size"])
    with torch.no_grad():
        torch.testing.assert_close(exported.model(clip), reference.float()(clip), rtol=1e-4, atol=1e-4)
    assert main(["eval", str(run), "--device", "cpu", "--protocol", "paper"]) == 0
    results = json.loads((run / "eval.json").read_text())["results"]
    assert results["single_view"]["num_videos"] == data["num_val"]
    assert results["paper"]["num_clips"] == data["num_val"]  # synthetic clips are one window long
    layer = "conv1" if arch.startswith("resnet") else "conv1.conv"
    argv = ["explain", str(run), "--out", str(tmp_path / "report"), "--layers", layer, "--top", "1", "--clips", "1"]
    argv += ["--actmax-steps", "0", "--no-verify", "--no-faithfulness", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    assert (tmp_path / "report" / "index.html").is_file()


def test_refuses_bad_labels_and_an_existing_run(tmp_path, capsys):
    (tmp_path / "labels.txt").write_text("a\nb\na\n")
    argv = ["import-authors", str(tmp_path / "missing"), "--arch", "resnet18_3t", "--out", str(tmp_path / "run")]
    assert main([*argv, "--labels", str(tmp_path / "labels.txt")]) == 2
    assert "repeated class names ['a']" in capsys.readouterr().err
    assert main([*argv, "--classes", "3"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(b"x")
    assert main([*argv, "--classes", "3"]) == 2
    assert "--force" in capsys.readouterr().err
