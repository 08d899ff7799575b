"""``conv3t verify``: device, memory budget and the printed confidence interval, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conv3t.cli import main
from conv3t.exported import ModelInfo, save_exported
from conv3t.models import create_model


def make_run(path: Path) -> Path:
    """A tiny exported 3T run (untrained, temporal parameters spread like a trained one's)."""
    torch.manual_seed(0)
    model = create_model("resnet10_3t", 9, base_width=4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("rotation", "translation_x", "translation_y")):
                p.uniform_(-0.2, 0.2)
    info = ModelInfo(
        model="resnet10_3t",
        num_classes=9,
        classes=[f"class{i}" for i in range(9)],
        num_frames=6,
        size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        model_kwargs={"base_width": 4},
    )
    return save_exported(model, path, info)


@pytest.mark.slow
def test_verify_prints_the_interval_device_and_batch(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    code = main(["verify", str(run), "--mode", "image", "--textures", "2", "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "95% CI" in out
    assert "on cpu (batch size image mode" in out


def test_verify_budget_too_small_names_the_option(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    code = main(["verify", str(run), "--mode", "image", "--textures", "1", "--max-memory", "1kB", "--no-progress"])
    assert code == 1
    assert "raise --max-memory" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_verify_cuda_without_cuda(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["verify", str(run), "--device", "cuda", "--no-progress"]) == 1
    assert "--device: 'cuda' asked for, but CUDA is not available" in capsys.readouterr().err


@pytest.mark.slow
def test_verify_layer_energies_option(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["verify", str(run), "--mode", "layer", "--no-progress", "--out", str(tmp_path / "exact")]) == 0
    assert "layer mode none: closed form" in capsys.readouterr().out
    argv = ["verify", str(run), "--mode", "layer", "--layer-energies", "sampled", "--textures", "1", "--no-progress"]
    assert main(argv) == 0
    assert "batch size layer mode" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["verify", str(run), "--layer-energies", "closed"])
