"""Trainer options (any lightning.Trainer argument, strategy mappings), the Lightning floor, error reporting of
`conv3t train`, TensorBoard as an extra, checkpoint refusal messages and file modes, SLURM checkpoint choice."""

from __future__ import annotations

import inspect
import json
import os
import re
import stat
import time
import tomllib
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from torch import nn
from train_helpers import tiny_synthetic

from conv3t.cli import build_parser
from conv3t.cli import main as cli_main
from conv3t.train.checkpoint import AtomicCheckpointIO, CheckpointError, load_checkpoint_file
from conv3t.train.config import ConfigError, apply_overrides, validate_config
from conv3t.train.run import _resume_point, build_trainer
from conv3t.train.schema import LoggingConfig, TrainerConfig, to_plain
from conv3t.train.trainer_options import build_strategy

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_lightning_floor_is_the_first_release_with_fit_weights_only():
    (req,) = [Requirement(r) for r in _pyproject()["project"]["dependencies"] if r.startswith("lightning")]
    floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert floors and min(floors) >= Version("2.6")  # 2.2-2.5 reject fit(..., weights_only=True)
    assert "weights_only" in inspect.signature(L.Trainer.fit).parameters


def test_a_type_error_from_a_bug_is_not_reported_as_bad_settings(tmp_path, monkeypatch, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(tiny_synthetic()))

    def buggy_train(*args, **kwargs):
        raise TypeError("fit() got an unexpected keyword argument 'weights_only'")

    monkeypatch.setattr("conv3t.train.run.train", buggy_train)
    with pytest.raises(TypeError, match="weights_only"):  # a traceback, not "bad data/model settings"
        cli_main(["train", str(config), "--out", str(tmp_path / "a")])
    monkeypatch.undo()
    # A bad model keyword is still a settings error with a one-line message naming it.
    # It is found when the config is read (status 2), before any folder is made.
    assert cli_main(["train", str(config), "--out", str(tmp_path / "b"), "--model.kwargs", "{nonsense: 1}"]) == 2
    assert "model.kwargs.nonsense" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_any_trainer_argument_is_accepted_and_typos_are_named(tmp_path):
    cfg = validate_config(
        tiny_synthetic(trainer={"max_time": "00:00:05:00", "profiler": "simple", "use_distributed_sampler": False})
    )
    cfg = validate_config(apply_overrides(cfg, {"trainer.min_epochs": 1, "trainer.plugins": []}))
    trainer, _ = build_trainer(cfg, tmp_path, enable_logging=False)
    assert type(trainer.profiler).__name__ == "SimpleProfiler"
    assert trainer.min_epochs == 1
    timers = [cb for cb in trainer.callbacks if type(cb).__name__ == "Timer"]
    assert timers and timers[0]._duration == 5 * 60  # max_time became Lightning's Timer
    assert "max_time" not in to_plain(TrainerConfig())  # extra keys get no default of their own

    with pytest.raises(ConfigError, match=r"unknown config key 'trainer.max_tme' \(did you mean 'max_time'\?\)"):
        validate_config(tiny_synthetic(trainer={"max_tme": "00:01:00:00"}))
    with pytest.raises(ConfigError, match="did you mean 'profiler'"):
        apply_overrides({}, {"trainer.profilr": "simple"})
    with pytest.raises(ConfigError, match=r"trainer.max_time must be quoted"):
        validate_config(tiny_synthetic(trainer={"max_time": yaml.safe_load("1:00:00:00")}))  # 216000, base 60
    with pytest.raises(ConfigError, match=r"trainer.logger is set by conv3t; use logging"):
        validate_config(tiny_synthetic(trainer={"logger": False}))
    bad = validate_config(tiny_synthetic(trainer={"profiler": "no-such-profiler"}))
    with pytest.raises(ConfigError, match=r"trainer: .*`profiler`"):
        build_trainer(bad, tmp_path, enable_logging=False)


def test_strategy_mapping_becomes_the_strategy_object():
    from lightning.pytorch.strategies import DDPStrategy

    strategy = build_strategy({"name": "ddp", "find_unused_parameters": True, "process_group_backend": "gloo"})
    assert isinstance(strategy, DDPStrategy)
    assert strategy._ddp_kwargs == {"find_unused_parameters": True}
    assert strategy._process_group_backend == "gloo" and strategy._start_method == "popen"  # registry's "ddp"
    assert build_strategy("ddp_spawn") == "ddp_spawn"

    cfg = validate_config(apply_overrides(validate_config(tiny_synthetic()), {"trainer.strategy.name": "ddp"}))
    assert cfg.trainer.strategy == {"name": "ddp"}
    with pytest.raises(ConfigError, match="did you mean 'find_unused_parameters'"):
        validate_config(tiny_synthetic(trainer={"strategy": {"name": "ddp", "find_unused_parameter": True}}))
    with pytest.raises(ConfigError, match="did you mean 'ddp_spawn'"):
        validate_config(tiny_synthetic(trainer={"strategy": {"name": "ddp_spwn"}}))


def test_tensorboard_is_an_extra_and_off_by_default(tmp_path, monkeypatch):
    assert LoggingConfig().tensorboard is False
    assert any(r.startswith("tensorboard") for r in _pyproject()["project"]["optional-dependencies"]["tensorboard"])
    monkeypatch.setattr("conv3t.train.run.tensorboard_available", lambda: False)
    cfg = validate_config(tiny_synthetic(logging={"tensorboard": True}))
    with pytest.raises(ConfigError, match=r"pip install 'conv3t\[tensorboard\]'"):
        build_trainer(cfg, tmp_path)


def test_checkpoint_with_a_disallowed_pickle_global_says_so(tmp_path):
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "module": nn.Linear(1, 1)}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert str(path) in message and "refused" in message and "torch.nn.modules.linear.Linear" in message
    assert "corrupt" not in message


def test_checkpoints_get_the_mode_the_umask_gives(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "ck" / "last.ckpt"
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_broken_command_module_fails_loudly(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name == "conv3t.commands.eval":
            raise ModuleNotFoundError("No module named 'conv3t.commands.eval'", name=name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ImportError, match="'eval' command"):
        build_parser()


def test_train_help_names_only_configs_that_exist(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    named = re.findall(r"configs/[\w./-]+\.yaml", capsys.readouterr().out)
    assert named and all((ROOT / n).is_file() for n in named), named


def test_requeue_checkpoint_wins_over_an_older_last_ckpt(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    for path in (last, tmp_path / "hpc_ckpt_1.ckpt", tmp_path / "hpc_ckpt_2.ckpt"):
        path.write_bytes(b"x")
    now = time.time()
    os.utime(last, (now - 60, now - 60))
    assert _resume_point(tmp_path, resume=True) == tmp_path / "hpc_ckpt_2.ckpt"  # newest number, newer file
    assert _resume_point(tmp_path, resume=False) == tmp_path / "hpc_ckpt_2.ckpt"  # a requeued job: no --resume
    os.utime(last, (now + 60, now + 60))
    assert _resume_point(tmp_path, resume=True) == last  # a later last.ckpt (the run went on after the requeue)
    for path in tmp_path.glob("hpc_ckpt_*.ckpt"):
        path.unlink()
    assert _resume_point(tmp_path, resume=False) is None


def _fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A venv whose python / ruff / conv3t only log their arguments (and whose stamp says "installed")."""
    import hashlib

    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    (venv / ".conv3t-installed").write_text(hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + "\n")
    fake_python = f"""#!/bin/sh
echo "python $*" >> "{log}"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$4/bin"; cp "$0" "$4/bin/python"; cp "$(dirname "$0")/conv3t" "$4/bin/conv3t"
fi
if [ "$1" = "-c" ]; then echo "{tmp_path}"; fi
"""
    for name, text in {"python": fake_python, "ruff": f'#!/bin/sh\necho "ruff $*" >> "{log}"\n'}.items():
        (venv / "bin" / name).write_text(text)
    (venv / "bin" / "conv3t").write_text(f'#!/bin/sh\necho "conv3t $*" >> "{log}"\n')
    for f in (venv / "bin").iterdir():
        f.chmod(0o755)
    return venv, log


def test_scripts_use_conv3t_venv(tmp_path):
    import subprocess

    venv, log = _fake_venv(tmp_path)
    fake_path = tmp_path / "path"
    fake_path.mkdir()
    (fake_path / "chromium").write_text("#!/bin/sh\n")  # so test.sh does not try to install it
    (fake_path / "chromium").chmod(0o755)
    env = {**os.environ, "CONV3T_VENV": str(venv), "PATH": f"{fake_path}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--quick"], env=env, check=True, timeout=60)
    assert "conv3t demo --out runs/demo --quick" in log.read_text()
    log.unlink()
    subprocess.run(["bash", str(ROOT / "scripts" / "test.sh"), "-k", "x"], env=env, check=True, timeout=120)
    calls = log.read_text().splitlines()
    assert "ruff check ." in calls  # CI lints
    assert any(c.startswith("python -m pip wheel") for c in calls)  # ... builds the wheel
    assert any(c.startswith("python -m pip --python") and "install" in c and ".whl" in c for c in calls)
    assert "conv3t params" in calls  # ... runs it from a fresh venv
    assert calls[-1] == "python -m pytest -q -n auto --maxprocesses 8 -k x"  # all cores (xdist), then the args
