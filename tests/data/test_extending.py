"""docs/extending.md "## A dataset": its worked example, run as printed (trained, evaluated, checked), the
registry rules it relies on, and the entry-point route for datasets in other packages."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from conv3t.cli import main as cli_main
from conv3t.data import build_datamodule, check_data_config, data_config_keys, dataset_names, registry
from conv3t.train.config import ConfigError, load_config, validate_config
from conv3t.train.run import train

DOCS = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _section() -> str:
    text = DOCS.read_text()
    section = text[text.index("## A dataset") :]
    end = section.find("\n## ", 1)
    return section if end < 0 else section[:end]


@pytest.fixture
def isolated_registry(monkeypatch):
    """Registrations made by a test go to a copy of the registry, dropped afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _import_example(tmp_path: Path):
    code = re.findall(r"```python\n(.*?)```", _section(), flags=re.S)[0]
    path = tmp_path / "npz_clips.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("npz_clips_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _arrays(root: Path, n: dict[str, int], t: int = 8, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("left\nright\n")
    for split, count in n.items():
        clips = rng.integers(0, 256, (count, t, size, size, 3), dtype=np.uint8)
        np.savez(root / f"{split}.npz", clips=clips, labels=np.arange(count) % 2)


def test_worked_example_trains_evaluates_and_checks(tmp_path, monkeypatch, isolated_registry, capsys):
    _import_example(tmp_path)
    assert "npz_clips" in dataset_names()
    assert data_config_keys("npz_clips") == sorted(
        ["dataset", "batch_size", "num_workers", "pin_memory", "persistent_workers", "root", "num_frames", "size"]
    )
    monkeypatch.chdir(tmp_path)
    _arrays(tmp_path / "my_arrays", {"train": 4, "val": 2})
    data = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", _section(), flags=re.S)[0])["data"]
    dm = build_datamodule(data)
    assert dm.classes == ["left", "right"] and dm.num_frames == 8 and dm.size == (32, 32)
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (2, 3, 8, 32, 32) and y.tolist() == [0, 1]
    assert len(dm.make_dataset("test")) == 2  # no test.npz: the val file

    config = {
        "model": {"name": "resnet10_3t", "kwargs": {"base_width": 4, "stem_temporal_stride": 1}},
        "data": {**data, "num_frames": 4, "batch_size": 2},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "log_every_n_steps": 1},
        "logging": {"progress_bar": "none", "tensorboard": False},
    }
    result = train(validate_config(config), tmp_path / "run")
    assert "val/top1" in result.metrics
    assert cli_main(["eval", str(tmp_path / "run")]) == 0
    assert "top-1" in capsys.readouterr().out

    report = check_data_config(data)
    assert report.ok and report.videos_ok == 4 + 2 + 2  # train, val, and val again as the test split
    np.savez(tmp_path / "my_arrays" / "val.npz", clips=np.zeros((2, 8, 32, 32, 3), np.uint8), labels=np.array([0, 5]))
    text = [str(p) for p in check_data_config(data).problems]
    assert text == [f"{Path('my_arrays') / 'val.npz'}: clip 1: label out of range"] * 2


def test_registry_refuses_bad_registrations(isolated_registry):
    from dataclasses import dataclass

    @dataclass(kw_only=True)
    class Loader(registry.DatasetSource):
        num_frames: int = 4
        size: int = 8
        batch_size: int = 2

    with pytest.raises(TypeError, match=r"options \['batch_size'\] are the data module's loader options"):
        registry.register_dataset("bad")(Loader)
    with pytest.raises(TypeError, match="must be a DatasetSource dataclass"):
        registry.register_dataset("bad")(object)

    @dataclass(kw_only=True)
    class Other(registry.DatasetSource):
        num_frames: int = 4
        size: int = 8

    with pytest.raises(ValueError, match=r"'jester' is already registered by conv3t\.data\.jester\.JesterSource"):
        registry.register_dataset("jester")(Other)


def test_config_typos_get_the_closest_key(isolated_registry):
    base = {"model": {"name": "resnet10_3t"}}
    cases = [
        ({"dataset": "video_lst"}, "data.dataset must be one of"),
        ({"dataset": "video_lst"}, "(did you mean 'video_list'?)"),
        ({"dataset": "video_list", "root": "r", "train_lst": "t", "val_list": "v"}, "(did you mean 'train_list'?)"),
        (
            {"dataset": "frame_list", "root": "r", "train_list": "t", "val_list": "v", "frame_templat": "x"},
            "'frame_template'",
        ),
        ({"dataset": "video_folder", "root": "r", "annotation_path": "a"}, "'data.annotation_path' (an option of"),
        (
            {"dataset": "video_list", "root": "r", "val_list": "v"},
            "data.train_list is required for dataset 'video_list'",
        ),
    ]
    for data, message in cases:
        with pytest.raises(ConfigError, match=r"^my\.yaml: ") as err:
            validate_config({**base, "data": data}, source="my.yaml")
        assert message in str(err.value), (data, str(err.value))


def test_datasets_of_installed_packages_register_through_entry_points(tmp_path, monkeypatch, isolated_registry):
    module = tmp_path / "plugin_clips.py"
    code = re.findall(r"```python\n(.*?)```", _section(), flags=re.S)[0]
    module.write_text(code.replace('"npz_clips"', '"plugin_clips"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    entry = SimpleNamespace(load=lambda: importlib.import_module("plugin_clips"))
    seen = []

    def entry_points(group):
        seen.append(group)
        return [entry]

    monkeypatch.setattr("importlib.metadata.entry_points", entry_points)
    monkeypatch.delitem(sys.modules, "plugin_clips", raising=False)
    assert registry.get_dataset("plugin_clips").__name__ == "NpzClipsSource" and seen == ["conv3t.datasets"]
    registry.get_dataset("synthetic")
    assert seen == ["conv3t.datasets"]  # loaded once
    cfg = load_config(
        _write(
            tmp_path / "c.yaml", {"model": {"name": "resnet10_3t"}, "data": {"dataset": "plugin_clips", "root": "x"}}
        )
    )
    assert cfg.data.dataset == "plugin_clips"


def _write(path: Path, obj: dict) -> Path:
    path.write_text(yaml.safe_dump(obj))
    return path
