"""docs/extending.md "## A model family": its worked example, run as printed (built, trained through conv3t.train,
read, exported and loaded), and the registry rules it relies on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from conv3t.exported import load_exported
from conv3t.models import ModelSpec, architecture_kwargs, create_model, list_models, register_model, registry
from conv3t.nn import conv3t_layers
from conv3t.readout import temporal_parameters
from conv3t.train.config import validate_config
from conv3t.train.run import train

DOCS = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _example_code() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## A model family") :]
    end = section.find("\n## ", 1)
    section = section if end < 0 else section[:end]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


@pytest.fixture
def isolated_registry(monkeypatch):
    """Registrations made by a test go to a copy of the registry, dropped afterwards."""
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))


def _run_example() -> dict:
    namespace: dict = {"__name__": "c3t_stack_example"}
    exec(compile(_example_code(), "docs/extending.md (model example)", "exec"), namespace)
    return namespace


def test_worked_example_builds_trains_reads_and_loads(tmp_path, isolated_registry):
    _run_example()
    assert "c3t_stack" in list_models() and list_models()[:4] == [
        "resnet18_3t",
        "resnet18_3d",
        "googlenet_3t",
        "googlenet_3d",
    ]
    assert architecture_kwargs("c3t_stack") == ("width", "depth")
    model = create_model("c3t_stack", 3, width=4)
    assert [name for name, _ in conv3t_layers(model)] == ["features.0", "features.3", "features.6"]
    assert model(torch.randn(2, 3, 4, 16, 16)).shape == (2, 3)

    config = {
        "seed": 0,
        "model": {"name": "c3t_stack", "kwargs": {"width": 4, "depth": 2}},
        "data": {"dataset": "synthetic", "num_frames": 4, "size": 16, "num_train": 6, "num_val": 3, "batch_size": 3},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "log_every_n_steps": 1},
        "logging": {"progress_bar": "none", "tensorboard": False},
    }
    train(validate_config(config), tmp_path / "run")
    exported = load_exported(tmp_path / "run")
    assert type(exported.model).__name__ == "Conv3TStack" and exported.info.model_kwargs == {"width": 4, "depth": 2}
    table = temporal_parameters(exported.model)
    assert set(table["layer"]) == {"features.0", "features.3"} and len(table) == 2 * 4 * 2  # layers x ch x steps


def test_unknown_keywords_and_pretrained_weights_are_refused(isolated_registry):
    _run_example()
    with pytest.raises(TypeError, match=r"c3t_stack accepts: .*width, depth"):
        create_model("c3t_stack", 3, base_width=4)
    with pytest.raises(ValueError, match="no 2D architecture"):
        create_model("c3t_stack", 3, pretrained="imagenet")


def test_registry_refuses_a_taken_name_and_a_bad_variant(isolated_registry):
    spec = ModelSpec("resnet18_3t", lambda n: torch.nn.Linear(1, n), "3t", None, "duplicate")
    with pytest.raises(ValueError, match="registered already"):
        register_model(spec)
    with pytest.raises(ValueError, match="variant"):
        register_model(ModelSpec("x_2d", lambda n: torch.nn.Linear(1, n), "2d", None, "bad"))
