"""Config files, overrides and validation; every shipped config parses and builds its model and data module."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import tiny_synthetic

from conv3t.data.registry import LOADER_OPTIONS
from conv3t.models import PAPER_PARAMETER_COUNTS, count_parameters
from conv3t.train.config import (
    ConfigError,
    apply_overrides,
    dump_config,
    load_config,
    parse_override_args,
    validate_config,
)
from conv3t.train.module import build_model
from conv3t.train.schema import CheckpointConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER_GRID = [
    f"{arch}_{var}_{ds}_{init}"
    for arch, var, ds, init in itertools.product(
        ("resnet18", "googlenet"), ("3t", "3d"), ("jester", "ucf101"), ("imagenet", "scratch")
    )
]


def test_every_table_cell_has_a_config_with_the_papers_clip_size():
    for name in PAPER_GRID:
        cfg = load_config(CONFIGS / f"{name}.yaml")
        arch, var, ds, init = name.split("_")
        assert cfg.model.name == f"{arch}_{var}"
        assert cfg.model.pretrained == ("imagenet" if init == "imagenet" else None)
        assert cfg.data.dataset == ds
        assert cfg.data.options["num_frames"] == 30
        assert cfg.data.options["size"] == ([150, 224] if ds == "jester" else [168, 224])
        assert cfg.loss.aux_weight == 0.3


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_config_builds_model_and_datamodule(path, jester_root, ucf_paths):
    """Each config: the model (on the meta device: no memory, no init cost) and the data module on fixtures."""
    from conv3t.data import build_datamodule

    cfg = load_config(path)
    data = cfg.data.as_mapping()
    if data["dataset"] == "jester":
        data["root"] = str(jester_root)
    elif data["dataset"] == "ucf101":
        data["root"], data["annotation_path"] = str(ucf_paths[0]), str(ucf_paths[1])
    dm = build_datamodule(data)
    expected_classes = {"jester": 27, "ucf101": 3}.get(data["dataset"], 9)
    assert dm.num_classes == expected_classes
    model_cfg = dataclasses.replace(cfg.model, pretrained=None)  # ImageNet weights are not downloaded in tests
    with torch.device("meta"):
        model = build_model(model_cfg, num_classes=27 if data["dataset"] == "jester" else 101)
    name = cfg.model.name
    if name in PAPER_PARAMETER_COUNTS and not cfg.model.kwargs:
        n = 27 if data["dataset"] == "jester" else 101
        assert count_parameters(model) == PAPER_PARAMETER_COUNTS[name][n]


def test_loading_one_clip_of_each_real_dataset_config(jester_root, ucf_paths):
    from conv3t.data import build_datamodule

    for name, root in (("resnet18_3t_jester_scratch", {"root": str(jester_root)}),
                       ("googlenet_3t_ucf101_imagenet",
                        {"root": str(ucf_paths[0]), "annotation_path": str(ucf_paths[1])})):  # fmt: skip
        cfg = load_config(CONFIGS / f"{name}.yaml", {f"data.{k}": v for k, v in root.items()})
        dm = build_datamodule(cfg.data.as_mapping())
        dm.setup("fit")
        clip, label = dm.train_set[0]
        assert tuple(clip.shape) == (3, 30, *cfg.data.options["size"])
        assert 0 <= int(label) < dm.num_classes


def test_defaults_and_type_coercion():
    cfg = validate_config({"model": {"name": "resnet10_3t"}, "data": {"dataset": "synthetic"}, "optim": {"lr": "1e-3"}})
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.loss.aux_weight == 0.3
    assert cfg.checkpoint == CheckpointConfig(every_n_epochs=1, every_n_train_steps=None, save_best=True)
    assert cfg.data.batch_size == LOADER_OPTIONS["batch_size"]  # the loader default, written once
    assert validate_config(tiny_synthetic(trainer={"max_epochs": 3.0})).trainer.max_epochs == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trainr": {}}, "unknown config key 'trainr' (did you mean 'trainer'?)"),
        ({"optim": {"lrr": 0.1}}, "unknown config key 'optim.lrr' (did you mean 'lr'?)"),
        ({"data": {"batchsize": 4}}, "unknown config key 'data.batchsize' (did you mean 'batch_size'?)"),
        ({"optim": {"name": "rmsprop"}}, "optim.name must be one of"),
        ({"trainer": {"max_epochs": "many"}}, "trainer.max_epochs must be an integer"),
        ({"trainer": {"max_epochs": 2.5}}, "trainer.max_epochs must be an integer"),
        ({"cache": {"clips": "yes"}}, "cache.clips must be true/false"),
        ({"optim": {"lr": 0}}, "optim.lr must be > 0"),
    ],
)
def test_bad_values_name_the_key(raw, message):
    base = tiny_synthetic()
    for section, values in raw.items():
        base[section] = {**base.get(section, {}), **values}
    with pytest.raises(ConfigError, match=r"^my\.yaml: ") as err:
        validate_config(base, source="my.yaml")
    assert message in str(err.value)


def test_missing_required_keys():
    with pytest.raises(ConfigError, match=r"model.name is required"):
        validate_config({"data": {"dataset": "synthetic"}})
    with pytest.raises(ConfigError, match=r"data.dataset is required"):
        validate_config({"model": {"name": "resnet10_3t"}})


def test_override_parsing_and_application():
    tokens = ["--optim.lr", "0.01", "--trainer.devices=2", "--data.size", "[64, 48]", "--model.pretrained", "null"]
    overrides = parse_override_args(tokens)
    assert overrides == {"optim.lr": 0.01, "trainer.devices": 2, "data.size": [64, 48], "model.pretrained": None}
    cfg = validate_config(apply_overrides(validate_config(tiny_synthetic()), overrides))
    assert cfg.optim.lr == 0.01 and cfg.trainer.devices == 2 and cfg.data.options["size"] == [64, 48]
    with pytest.raises(ConfigError, match=r"unknown config key 'optim.momentom' \(did you mean 'momentum'\?\)"):
        apply_overrides(cfg, {"optim.momentom": 0.5})
    with pytest.raises(ConfigError, match="is a section"):
        apply_overrides(cfg, {"optim": 1})
    with pytest.raises(ConfigError, match="needs a value"):
        parse_override_args(["--optim.lr"])
    assert parse_override_args(["--seed", "3"]) == {"seed": 3}  # top-level keys need no dot
    assert validate_config(apply_overrides(cfg, {"seed": 3})).seed == 3
    with pytest.raises(ConfigError, match="unknown config key 'lr'"):
        apply_overrides(cfg, {"lr": 3})


def test_load_config_reports_file_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(tiny_synthetic()))
    with pytest.raises(ConfigError, match=r"good.yaml \(with command-line overrides\): trainer.max_epochs"):
        load_config(good, {"trainer.max_epochs": "x"})


def test_resolved_config_round_trips(tmp_path):
    cfg = validate_config(tiny_synthetic())
    path = dump_config(cfg, tmp_path / "config.yaml")
    assert load_config(path) == cfg
    assert not list(tmp_path.glob(".*.tmp"))


def test_demo_yaml_matches_the_demo_command():
    from conv3t.commands.demo import demo_config

    assert load_config(CONFIGS / "demo.yaml") == demo_config()
