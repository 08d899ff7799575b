"""The experiments' result cache (experiments/_common.py) never reuses a result whose inputs changed."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import _common


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    """Paths of the typed config's settings: every dataclass field, recursively (a mapping is one setting)."""
    if dataclasses.is_dataclass(node):
        return [leaf for f in dataclasses.fields(node) for leaf in _leaves(getattr(node, f.name), (*path, f.name))]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list | tuple):
        return type(value)([*value, 1])
    if value is None:
        return "x"
    if isinstance(value, dict):
        return {**value, "extra": 1}
    raise TypeError(type(value))


def _get(cfg: Any, path: tuple) -> Any:
    for k in path:
        cfg = getattr(cfg, k)
    return cfg


def _set(cfg: Any, path: tuple, value: Any) -> Any:
    """A copy of the frozen config with one setting replaced (unvalidated: the key must not depend on checks)."""
    if len(path) == 1:
        return dataclasses.replace(cfg, **{path[0]: value})
    return dataclasses.replace(cfg, **{path[0]: _set(getattr(cfg, path[0]), path[1:], value)})


@pytest.fixture(scope="module")
def config() -> Any:
    return _common.base_config({})


def test_every_config_setting_is_part_of_the_key(config):
    key = _common.run_key(config, code="c")
    leaves = _leaves(config)
    assert len(leaves) > 40  # the whole validated config, defaults included, not a hand-picked subset
    for path in leaves:
        if path == ("model", "pretrained"):
            continue  # a path: keyed by the file's bytes (below)
        assert _common.run_key(_set(config, path, _changed(_get(config, path))), code="c") != key, path


def test_code_version_is_part_of_the_key(config):
    assert _common.run_key(config, code="a") != _common.run_key(config, code="b")
    assert _common.run_key(config) == _common.run_key(config, code=_common.code_version())


def test_weights_are_keyed_by_their_bytes_not_their_path(config, tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"one")
    cfg = _set(config, ("model", "pretrained"), str(weights))
    first = _common.run_key(cfg, code="c")
    weights.write_bytes(b"two")  # retrained 2D network at the same path
    assert _common.run_key(cfg, code="c") != first
    assert first != _common.run_key(config, code="c")


def test_every_field_of_a_setting_reaches_the_config():
    base = _common.Setting()
    ref = _common.base_config(base.overrides())
    others = {"task": "appearance", "model": "resnet10_3d", "inflate": "mean", "seed": 1, "temporal_lr": 0.003}
    assert set(others) | {"pretrained"} == {f.name for f in dataclasses.fields(base)}
    for field, value in others.items():
        setting = dataclasses.replace(base, **{field: value})
        assert _common.base_config(setting.overrides()) != ref, field


def test_code_version_covers_the_package_sources(tmp_path, monkeypatch):
    # A copy of the package with one byte changed in one module gives another version.
    import shutil

    import conv3t

    package = Path(conv3t.__file__).resolve().parent
    copy_dir = tmp_path / "conv3t"
    shutil.copytree(package, copy_dir, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(_common.conv3t, "__file__", str(copy_dir / "__init__.py"))
    before = _common.code_version.__wrapped__()
    module = copy_dir / "train" / "optim.py"
    module.write_text(module.read_text() + "\n# changed\n")
    assert _common.code_version.__wrapped__() != before
