"""The experiments' result cache (experiments/_common.py) never reuses a result whose inputs changed."""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import _common


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, k))] or [path]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, 1]
    if value is None:
        return "x"
    if isinstance(value, dict):
        return {**value, "extra": 1}
    raise TypeError(type(value))


def _set(cfg: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(cfg)
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out


@pytest.fixture(scope="module")
def config() -> dict:
    return _common.base_config({})


def test_every_config_setting_is_part_of_the_key(config):
    key = _common.run_key(config, code="c")
    leaves = _leaves(config)
    assert len(leaves) > 40  # the whole validated config, defaults included, not a hand-picked subset
    for path in leaves:
        if path == ("model", "pretrained"):
            continue  # a path: keyed by the file's bytes (below)
        node: Any = config
        for k in path:
            node = node[k]
        assert _common.run_key(_set(config, path, _changed(node)), code="c") != key, path


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
