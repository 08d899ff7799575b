"""The explanation methods' shared rules: which layers are temporal (by module type and kernel, never by the kind
of model around them), and that the methods package loads nothing heavy and nothing of the report."""

from __future__ import annotations

import subprocess
import sys

import pytest
from torch import nn

from conv3t.explain.methods import is_temporal, temporal_layers
from conv3t.nn import Conv3T


def test_a_deep_conv3d_beside_a_conv3t_is_temporal_too() -> None:
    """``Sequential(Conv3T, Conv3d)``: both kernels span 3 frames, so both are temporal (the report once said
    ``['0']`` because the model has Conv3T layers, the checks ``['0', '1']``)."""
    model = nn.Sequential(Conv3T(3, 4, (3, 3, 3), padding=1), nn.Conv3d(4, 4, (3, 3, 3), padding=1))
    assert temporal_layers(model) == ["0", "1"]


def test_a_one_frame_conv3d_is_never_temporal() -> None:
    """A ``(1, 3, 3)`` Conv3d sees one frame at a time: not temporal, beside a deep layer or alone (the checks
    once fell back to every convolution when none was deep)."""
    mixed = nn.Sequential(nn.Conv3d(3, 4, (1, 3, 3)), nn.Conv3d(4, 4, (3, 1, 1)), Conv3T(4, 4, (1, 3, 3)))
    assert temporal_layers(mixed) == ["1"]
    assert temporal_layers(nn.Sequential(nn.Conv3d(3, 4, (1, 3, 3)), nn.ReLU())) == []
    assert not is_temporal(nn.Conv2d(3, 4, 3)) and not is_temporal(nn.ReLU())


def test_temporal_layers_follow_registration_order_and_name_a_bare_layer() -> None:
    model = nn.Sequential()
    model.add_module("late", nn.Conv3d(3, 3, (2, 1, 1)))
    model.add_module("early", Conv3T(3, 3, (2, 3, 3)))
    assert temporal_layers(model) == ["late", "early"]
    assert temporal_layers(nn.Conv3d(3, 3, 3)) == [""]
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        temporal_layers("resnet")  # type: ignore[arg-type]


def test_the_methods_package_loads_neither_captum_matplotlib_nor_the_report() -> None:
    code = (
        "import sys\n"
        "from conv3t.explain.methods import logits, temporal_layers\n"
        "heavy = [m for m in ('captum', 'matplotlib', 'conv3t.explain.report', 'conv3t.explain.faithfulness')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_notebook_example_runs_as_printed(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """README "Explain": a model in memory, its parameters and one prediction's explanation, with no run directory
    and no file written (run in an empty folder, which stays empty)."""
    import re
    from pathlib import Path

    import torch

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    part = readme[readme.index("In a notebook, nothing needs a run directory") :]
    code = re.findall(r"```python\n(.*?)```", part, flags=re.S)[0]
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace: dict = {}
    exec(compile(code, "README.md (notebook example)", "exec"), namespace)
    explanation = namespace["explanation"]
    assert explanation.gradcam.shape == (8, 32, 32) and explanation.frame_importance.shape == (8,)
    assert set(explanation.channels) <= set(temporal_layers(namespace["model"]))
    assert list(tmp_path.iterdir()) == []


def test_the_methods_write_no_files() -> None:
    """explain/methods computes (issue 25): no module there imports the atomic writers or calls a file writer;
    the figures that are saved (GIFs, plots) live in explain/plots.py and the report's render package."""
    import ast
    from pathlib import Path

    import conv3t.explain.methods as methods

    writers = {"atomic_open", "atomic_write", "save_figure", "savefig", "to_csv", "write_text", "write_bytes"}
    found = []
    for path in sorted(Path(methods.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "conv3t.files":
                found.append(f"{path.name}:{node.lineno} imports conv3t.files")
            name = getattr(node, "attr", None) or getattr(node, "id", None)
            if isinstance(node, ast.Attribute | ast.Name) and name in writers:
                found.append(f"{path.name}:{node.lineno} uses {name}")
    assert not found, found
