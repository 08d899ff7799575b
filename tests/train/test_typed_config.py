"""The typed experiment config: one schema, validated before anything is written, old checkpoints still load.

``data/untyped_config_a406b80.ckpt`` is a real ``last.ckpt`` written by conv3t at commit a406b80, before the
config was typed (its hyperparameters hold the plain config mapping of that version). It was made with that
commit's sources on the path by::

    cfg = validate_config(tiny_synthetic(model={"kwargs": {"base_width": 2, "stem_temporal_stride": 1}},
                                         trainer={"max_epochs": 1, "limit_train_batches": 1,
                                                  "limit_val_batches": 1, "num_sanity_val_steps": 0},
                                         data={"num_train": 6, "num_val": 3, "batch_size": 3}))
    train(cfg, run_dir)   # -> run_dir/checkpoints/last.ckpt
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import tiny_synthetic

from conv3t.cli import main as cli_main
from conv3t.train.checkpoint import load_checkpoint_file
from conv3t.train.config import (
    ConfigError,
    apply_overrides,
    load_config,
    override_keys,
    validate_config,
)
from conv3t.train.module import VideoClassifier
from conv3t.train.schema import ExperimentConfig, ModelConfig, OptimConfig

ROOT = Path(__file__).resolve().parents[2]
OLD_CHECKPOINT = Path(__file__).parent / "data" / "untyped_config_a406b80.ckpt"


# ------------------------------------------------------------------------------------------- old checkpoints
def test_a_checkpoint_written_before_the_typed_config_loads():
    old = load_checkpoint_file(OLD_CHECKPOINT)
    assert isinstance(old["hyper_parameters"]["config"], dict)  # the untyped format
    module = VideoClassifier.load_from_checkpoint(OLD_CHECKPOINT, map_location="cpu", weights_only=True)
    assert isinstance(module.config, ExperimentConfig)
    assert module.config.model.kwargs == {"base_width": 2, "stem_temporal_stride": 1}
    assert module.config.optim.lr == 0.01 and module.config.optim.betas == (0.9, 0.999)
    assert module.num_classes == 9 and module.classes[0] == "translate_left"
    for key, value in old["state_dict"].items():
        assert torch.equal(module.state_dict()[key], value), key
    # the hyperparameters it would write now are the plain form of the typed config, same layout as before
    assert module.hparams["config"] == module.config.to_dict()
    assert set(module.hparams["config"]) >= set(old["hyper_parameters"]["config"])


def test_a_checkpoint_loads_without_the_dataset_kind_it_was_trained_on():
    cfg = validate_config(tiny_synthetic()).to_dict()
    cfg["data"] = {"dataset": "a_plugin_not_installed_here", "root": "/data"}
    module = VideoClassifier(cfg, num_classes=9)
    assert module.config.data.dataset == "a_plugin_not_installed_here"
    with pytest.raises(ConfigError, match=r"data\.dataset: "):
        validate_config(cfg)  # a run of it, though, is refused before it starts


@pytest.mark.slow
def test_a_run_of_the_old_format_resumes(tmp_path, caplog):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD_CHECKPOINT, run / "checkpoints" / "last.ckpt")
    raw = load_checkpoint_file(OLD_CHECKPOINT)["hyper_parameters"]["config"]
    (run / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))  # as a406b80 wrote it
    from conv3t.train.run import train

    with caplog.at_level("WARNING", logger="conv3t.train"):
        result = train({**raw, "trainer": {**raw["trainer"], "max_epochs": 2}}, run, resume=True)
    # the keys the old file lacks (data.num_workers, ...) take their defaults: only the real change is named
    warned = [r.getMessage() for r in caplog.records if "differs" in r.getMessage()]
    assert len(warned) == 1 and warned[0].endswith("in: trainer.max_epochs")
    metrics = yaml.safe_load((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and metrics["resumed_from"].endswith("last.ckpt")
    assert result.exported and (run / "model.safetensors").is_file()


# ------------------------------------------------------------------------------- nothing written on bad input
@pytest.mark.parametrize(
    "change",
    [
        {"optim": {"lr": -1}},  # a schema range
        {"model": {"kwargs": {"base_width": 4, "nonsense": 1}}},  # the model's keyword arguments
        {"data": {"num_frame": 4}},  # the dataset kind's options
        {"sched": {"name": "plateau", "plateau_every_n_epochs": 2, "plateau_patience": 3}},  # a relation
        {"loss": {"class_weights": [1.0, 2.0]}},  # found when the data module tells the class count
        {"trainer": {"profiler": "no-such-profiler"}},  # found by lightning.Trainer itself
    ],
    ids=["range", "model-kwargs", "data-option", "relation", "class-weights", "trainer"],
)
def test_a_bad_config_leaves_no_run_folder(tmp_path, capsys, change):
    raw = tiny_synthetic()
    for section, values in change.items():
        raw[section] = {**raw.get(section, {}), **values}
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs" / "bad"
    assert cli_main(["train", str(config), "--out", str(out)]) in (1, 2)
    assert "conv3t train:" in capsys.readouterr().err
    assert not out.exists() and not out.parent.exists()


# ---------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("model", {"temporal_init": -0.1}, "model.temporal_init must be >= 0"),
        ("model", {"name": "resnet18_3x"}, "model.name: unknown model 'resnet18_3x'"),
        ("model", {"kwargs": {"base_widht": 4}}, "unknown config key 'model.kwargs.base_widht' (did you mean"),
        ("data", {"batch_size": 0}, "data.batch_size must be >= 1"),
        ("data", {"dataset": "synthetc"}, "data.dataset: "),
        ("data", {"num_frames": 0}, "data (synthetic): data.num_frames must be >= 1"),
        ("optim", {"betas": [0.9]}, "optim.betas must be a list of 2"),
        ("optim", {"temporal_lr": "fast"}, "optim.temporal_lr must be a number"),
        ("sched", {"plateau_factor": 1.0}, "sched.plateau_factor must be < 1"),
        ("loss", {"label_smoothing": 1.5}, "loss.label_smoothing must be <= 1"),
        ("early_stop", {"collapse_fraction": 0}, "early_stop.collapse_fraction must be > 0"),
        ("trainer", {"accumulate_grad_batches": 0}, "trainer.accumulate_grad_batches must be >= 1"),
        ("checkpoint", {"every_n_epochs": 0}, "checkpoint.every_n_epochs must be >= 1"),
        ("logging", {"progress_bar": "fancy"}, "logging.progress_bar must be one of"),
        ("cache", {"flip": 1}, "cache.flip must be true/false"),
    ],
)
def test_errors_name_the_file_and_the_dotted_key(tmp_path, section, values, key):
    raw = tiny_synthetic()
    raw[section] = {**raw.get(section, {}), **values}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ") and key in str(err.value)


def test_a_flat_config_says_where_its_keys_belong(tmp_path):
    path = tmp_path / "flat.yaml"
    path.write_text("name: resnet18_3t\ndataset: jester\nlr: 0.01\n")
    with pytest.raises(ConfigError, match=r"'dataset' must sit in its section .*data\.dataset"):
        load_config(path)


# ----------------------------------------------------------------------------------- one schema, everywhere
def test_every_schema_key_is_an_override_and_listed_in_the_help(capsys):
    cfg = validate_config(tiny_synthetic())
    plain = cfg.to_dict()
    for key in override_keys():
        value = plain
        for part in key.dotted.split("."):
            value = value[part]
        # every key can be set from the command line: setting it to its value gives back the same config
        assert validate_config(apply_overrides(cfg, {key.dotted: value})) == cfg, key.dotted
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = capsys.readouterr().out
    assert all(f"--{k.dotted} " in text for k in override_keys())
    assert "--optim.name" in text and "one of adam, adamw, sgd" in text


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_round_trips(path):
    cfg = load_config(path)
    assert validate_config(cfg.to_dict()) == cfg
    assert yaml.safe_load(yaml.safe_dump(cfg.to_dict())) == cfg.to_dict()  # plain YAML types only


def test_configs_built_in_code_are_checked_too():
    cfg = validate_config(tiny_synthetic())
    assert validate_config(dataclasses.replace(cfg, optim=OptimConfig(lr=0.5))).optim.lr == 0.5
    with pytest.raises(ConfigError, match=r"optim\.lr must be > 0"):
        VideoClassifier(dataclasses.replace(cfg, optim=OptimConfig(lr=0.0)), num_classes=9)
    with pytest.raises(ConfigError, match=r"model\.name: unknown model"):
        validate_config(dataclasses.replace(cfg, model=ModelConfig(name="no_such_model")))


def test_no_import_circle_inside_train():
    """Between any two files of conv3t.train, imports inside functions and under TYPE_CHECKING included."""
    package = ROOT / "src" / "conv3t" / "train"
    graph: dict[str, set[str]] = {}
    for file in package.glob("*.py"):
        targets = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("conv3t.train."):
                targets.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                targets |= {a.name.split(".")[2] for a in node.names if a.name.startswith("conv3t.train.")}
        graph[file.stem] = targets - {file.stem}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(t == goal or (t not in seen and reaches(t, goal, seen | {t})) for t in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m, {m})] == []


def test_the_config_reference_in_the_docs_names_every_key():
    """docs/training.md's table explains the keys; a key added to the schema must be added there too."""
    text = (ROOT / "docs" / "training.md").read_text()
    table = text.split("### Config reference", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = re.split(r"(?<!\\)\|", line)  # cells hold escaped pipes: `a` \| `b`
        rows[cells[1].strip().strip("`").replace("top level", "seed")] = cells[2]
    missing = []
    for key in override_keys():
        section, _, name = key.dotted.rpartition(".")
        if f"`{name or section}`" not in rows.get(section or key.dotted, ""):
            missing.append(key.dotted)
    assert missing == []
