"""Experiment configuration: YAML files, dotted command-line overrides, validation.

A config is a nested mapping with these sections (every key has a default except ``model.name`` and
``data.dataset``; see ``docs/training.md`` for the meaning of each)::

    seed: 0                    # seed_everything(seed, workers=True)
    model:     name, pretrained, inflate, transfer, init, aux_logits, kwargs, channels_last_3d, temporal_init,
               temporal_init_per_channel, compile
    data:      passed to conv3t.data.build_datamodule (dataset, root, num_frames, size, batch_size, ...)
    optim:     name (adam|adamw|sgd), lr, weight_decay, momentum, nesterov, betas,
               temporal_lr, temporal_weight_decay, norm_weight_decay
    sched:     name (cosine|constant|plateau), warmup_epochs, min_lr_ratio, plateau_* (factor, patience,
               every_n_epochs, threshold)
    loss:      aux_weight (GoogLeNet auxiliary heads, 0.3), label_smoothing, class_weights
    early_stop: rule (none|lightning|paper), monitor, mode, patience, min_delta, check_from_epoch,
               check_every_n_epochs, collapse_epochs, collapse_fraction
    trainer:   passed to lightning.Trainer: any of its arguments (max_epochs, accelerator, devices, strategy,
               precision, max_time, profiler, ...); strategy may be a mapping {name: ddp, <its keywords>}
    checkpoint: every_n_epochs, every_n_train_steps, save_best
    logging:   tensorboard, csv, progress_bar (rich|tqdm|none)
    cache:     clips, flip, reverse (in-memory clips for small synthetic runs, with label-aware augmentation)

Unknown keys are errors that name the key (and the closest known one). Values are coerced to the type of
their default where that is unambiguous, so ``lr: 1e-3`` (a string to YAML 1.1) still becomes a float.
The ``data`` and ``model.kwargs`` sections are free-form here: ``build_datamodule`` and ``create_model``
check them when the run is built.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conv3t.train.compiling import compile_options
from conv3t.train.trainer_options import TRAINER_RESERVED, strategy_keys, strategy_names, trainer_arguments

__all__ = [
    "ConfigError",
    "apply_overrides",
    "default_config",
    "dump_config",
    "load_config",
    "merge",
    "parse_override_args",
    "validate_config",
]


class ConfigError(ValueError):
    """A config file or override is malformed; the message names the source and the key."""


@dataclass(frozen=True)
class Field:
    """One leaf of the schema: its default, accepted types and, optionally, allowed values."""

    default: Any
    types: tuple[type, ...]
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    required: bool = False


def _f(default: Any, *types: type, nullable: bool = False, choices: Sequence[Any] | None = None) -> Field:
    return Field(default, types, nullable, tuple(choices) if choices is not None else None)


_REQUIRED_STR = Field(None, (str,), required=True)
_ANY = object  # accepts anything YAML can produce

# The schema. A dict is a section; ``FREE`` marks a section whose keys are checked elsewhere.
FREE = "free-form"
SCHEMA: dict[str, Any] = {
    "seed": _f(0, int),
    "model": {
        "name": _REQUIRED_STR,
        "pretrained": _f(None, str, nullable=True),  # None | "imagenet" | path to a 2D state dict
        # With pretrained: "repeat" copies the 2D filter into every time slice (a static clip gives D x the 2D
        # activations), "mean" divides it by the depth D (activations match the 2D network's). The authors' code
        # uses repeat for 3T models (K_1 = the 2D filter) and mean for 3D baselines (repeat_interleave / D).
        "inflate": _f("repeat", str, choices=("repeat", "mean")),
        # With pretrained: "all" copies every tensor that fits (convolutions, BatchNorm weights and statistics,
        # heads); "conv_only" copies the backbone's convolution kernels only, as the authors' code does.
        "transfer": _f("all", str, choices=("all", "conv_only")),
        # "default": torchvision's init (He-normal for ResNets, truncated normal std 0.01 for GoogLeNets);
        # "authors": PyTorch's default init of every layer with Conv3T 2D filters drawn from N(0, 1), as theirs.
        "init": _f("default", str, choices=("default", "authors")),
        "aux_logits": _f(True, bool),
        "kwargs": FREE,  # extra create_model keyword arguments, e.g. base_width
        "channels_last_3d": _f(False, bool),
        # > 0: start every Conv3T's rotation (radians) and translations (affine_grid units) uniformly in
        # [-a, a] per channel and step instead of the identity, so that channels prefer different motions from
        # the first step (helps small models trained from scratch; keep 0 for ImageNet-initialised models).
        "temporal_init": _f(0.0, float),
        # with temporal_init > 0: one draw per channel used at every step, so each channel starts as one
        # constant motion (its parameters then read as a motion, not as steps that change direction)
        "temporal_init_per_channel": _f(False, bool),
        # true, or a mapping of torch.compile keywords ({fullgraph: true, mode: ...}): see conv3t.train.compiling
        "compile": _f(False, bool, dict),
    },
    "data": FREE,
    "optim": {
        "name": _f("adam", str, choices=("adam", "adamw", "sgd")),
        "lr": _f(1e-3, float),
        "weight_decay": _f(0.0, float),
        "momentum": _f(0.9, float),
        "nesterov": _f(False, bool),
        "betas": _f([0.9, 0.999], list),
        # Scale, rotation and translation of Conv3T layers: few numbers that may need their own rate.
        "temporal_lr": _f(None, float, nullable=True),  # None = same as lr
        # Weight decay would pull scale towards 0 instead of its identity value 1: off by default.
        "temporal_weight_decay": _f(0.0, float),
        "norm_weight_decay": _f(0.0, float),  # BatchNorm weights and all biases
    },
    "sched": {
        "name": _f("cosine", str, choices=("cosine", "constant", "plateau")),
        "warmup_epochs": _f(0.0, float),  # linear warm-up from 0, per step; fractions of an epoch allowed
        "min_lr_ratio": _f(0.0, float),  # cosine ends at lr * min_lr_ratio
        # plateau: val top-1 checked at epochs 0, N, 2N, ... (N = plateau_every_n_epochs); rate x plateau_factor
        # after plateau_patience epochs (a multiple of N) without beating the best by > plateau_threshold
        "plateau_factor": _f(0.1, float),
        "plateau_patience": _f(5, int),
        "plateau_every_n_epochs": _f(1, int),
        "plateau_threshold": _f(0.0, float),
    },
    "loss": {
        "aux_weight": _f(0.3, float),  # GoogLeNet: loss = main + aux_weight * (aux1 + aux2)
        "label_smoothing": _f(0.0, float),
        # null | inverse_frequency (training list) | one weight per class; weights training and validation loss
        "class_weights": _f(None, str, list, nullable=True),
    },
    # rule none | lightning (monitor, mode, patience, min_delta) | paper (check_*, collapse_*): train/stopping.py
    "early_stop": {
        "rule": _f("none", str, choices=("none", "lightning", "paper")),
        "monitor": _f("val/top1", str),
        "mode": _f("max", str, choices=("max", "min")),
        "patience": _f(10, int),
        "min_delta": _f(0.0, float),
        "check_from_epoch": _f(9, int),
        "check_every_n_epochs": _f(5, int),
        "collapse_epochs": _f(0, int),
        "collapse_fraction": _f(0.5, float),
    },
    "trainer": {
        "max_epochs": _f(30, int),
        "max_steps": _f(-1, int),
        "accelerator": _f("auto", str),
        "devices": _f("auto", _ANY),
        # A name ("ddp") or a mapping {name: ddp, find_unused_parameters: true, ...} built into that strategy.
        "strategy": _f("auto", str, dict),
        "num_nodes": _f(1, int),
        "precision": _f("32-true", _ANY),
        "deterministic": _f(False, _ANY),  # True | False | "warn"
        "benchmark": _f(None, bool, nullable=True),
        "gradient_clip_val": _f(None, float, nullable=True),
        "accumulate_grad_batches": _f(1, int),
        "log_every_n_steps": _f(50, int),
        "val_check_interval": _f(None, _ANY, nullable=True),
        "check_val_every_n_epoch": _f(1, int),
        "limit_train_batches": _f(None, _ANY, nullable=True),
        "limit_val_batches": _f(None, _ANY, nullable=True),
        "num_sanity_val_steps": _f(2, int),
        "fast_dev_run": _f(False, _ANY),
        "sync_batchnorm": _f(False, bool),
        "enable_model_summary": _f(True, bool),
        # Any other lightning.Trainer argument (max_time, profiler, plugins, use_distributed_sampler, ...) is
        # accepted too, checked against the Trainer's signature (see _trainer_extra_keys).
    },
    "checkpoint": {
        "every_n_epochs": _f(1, int),  # last.ckpt after every N epochs
        "every_n_train_steps": _f(None, int, nullable=True),  # also every N optimizer steps (long epochs)
        "save_best": _f(True, bool),  # best.ckpt by validation top-1
    },
    "logging": {
        "tensorboard": _f(False, bool),  # needs the `tensorboard` extra: pip install 'conv3t[tensorboard]'
        "csv": _f(True, bool),
        "progress_bar": _f("rich", str, choices=("rich", "tqdm", "none")),
    },
    "cache": {
        # Render / decode the train and validation clips once and keep them in memory (small synthetic runs
        # such as the demo). Every epoch then sees the same clips, so the two label-aware augmentations below
        # are applied on the cached tensors instead.
        "clips": _f(False, bool),
        "flip": _f(False, bool),  # random left-right mirror, labels mapped by the dataset's flip_label_map
        "reverse": _f(False, bool),  # random time reversal (synthetic tasks only: left<->right, cw<->ccw, ...)
    },
}


def _defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        if spec is FREE:
            out[key] = {}
        elif isinstance(spec, Mapping):
            out[key] = _defaults(spec)
        elif not spec.required:
            out[key] = copy.deepcopy(spec.default)
    return out


def default_config() -> dict[str, Any]:
    """Every key with its default value (``model.name`` and ``data.dataset`` must still be given)."""
    return _defaults(SCHEMA)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``update`` wins; nested mappings are merged, everything else replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _unknown(key: str, where: str, known: Sequence[str], source: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    path = f"{where}.{key}" if where else key
    return ConfigError(f"{source}: unknown config key {path!r}{hint}; known keys here: {', '.join(sorted(known))}")


def _trainer_extra_keys() -> frozenset[str]:
    """``lightning.Trainer`` arguments beyond the schema's ``trainer`` keys (minus those conv3t sets)."""
    return trainer_arguments() - set(SCHEMA["trainer"])


# Sections that accept more keys than the schema lists: section path -> the extra keys.
_EXTRA_KEYS = {"trainer": _trainer_extra_keys}


def _is_extra_key(key: str, where: str, known: Sequence[str], source: str) -> bool:
    """True if ``where.key`` is an accepted extra key; raises the "unknown key" error otherwise."""
    if where == "trainer" and key in TRAINER_RESERVED:
        raise ConfigError(f"{source}: trainer.{key} is set by conv3t; use {TRAINER_RESERVED[key]} instead")
    extra = _EXTRA_KEYS.get(where)
    if extra is not None and key in extra():
        return True
    raise _unknown(key, where, [*known, *(extra() if extra is not None else ())], source)


def _check_strategy(spec: Mapping[str, Any], source: str) -> None:
    """A ``trainer.strategy`` mapping: ``name`` is a registered Lightning strategy, the rest its arguments."""
    name = spec.get("name")
    names = strategy_names()
    if not isinstance(name, str) or name not in names:
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{source}: trainer.strategy.name must be a Lightning strategy name such as 'ddp', got {name!r}{hint}"
        )
    accepted = strategy_keys(name)
    for key in spec:
        if accepted is not None and key != "name" and key not in accepted:
            raise _unknown(str(key), "trainer.strategy", ["name", *accepted], source)


def _coerce(value: Any, spec: Field, path: str, source: str) -> Any:
    if value is None:
        if spec.nullable or spec.types == (_ANY,):
            return None
        raise ConfigError(f"{source}: {path} must not be null")
    if _ANY in spec.types:
        return value
    if isinstance(value, bool) and bool not in spec.types:
        raise ConfigError(f"{source}: {path} must be {_names(spec.types)}, got {value!r}")
    if isinstance(value, spec.types):
        out = value
    elif float in spec.types and isinstance(value, int | str):
        try:
            out = float(value)
        except ValueError:
            raise ConfigError(f"{source}: {path} must be a number, got {value!r}") from None
    elif int in spec.types and isinstance(value, str | float):
        try:
            out = int(value) if isinstance(value, str) else value
        except ValueError:
            raise ConfigError(f"{source}: {path} must be an integer, got {value!r}") from None
        if isinstance(out, float):
            if not out.is_integer():
                raise ConfigError(f"{source}: {path} must be an integer, got {value!r}")
            out = int(out)
    elif list in spec.types and isinstance(value, tuple):
        out = list(value)
    else:
        raise ConfigError(f"{source}: {path} must be {_names(spec.types)}, got {value!r}")
    if spec.choices is not None and out not in spec.choices:
        raise ConfigError(f"{source}: {path} must be one of {list(spec.choices)}, got {out!r}")
    return out


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(
        {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(t, t.__name__) for t in types
    )


def _validate(cfg: Any, schema: Mapping[str, Any], where: str, source: str) -> dict[str, Any]:
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{source}: {where or 'the config'} must be a mapping, got {type(cfg).__name__}")
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if key not in schema:
            if _is_extra_key(str(key), where, list(schema), source):
                out[key] = copy.deepcopy(value)  # checked by lightning.Trainer itself
            continue
        spec = schema[key]
        path = f"{where}.{key}" if where else str(key)
        if spec is FREE:
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: {path} must be a mapping, got {value!r}")
            out[key] = copy.deepcopy(dict(value))
        elif isinstance(spec, Mapping):
            out[key] = _validate({} if value is None else value, spec, path, source)
        else:
            out[key] = _coerce(value, spec, path, source)
    for key, spec in schema.items():
        if isinstance(spec, Field) and spec.required and out.get(key) is None:
            path = f"{where}.{key}" if where else key
            raise ConfigError(f"{source}: {path} is required")
    return out


def _check_data(data: Mapping[str, Any], source: str) -> None:
    """The ``data:`` keys against the registered dataset's options (its signature) and loader keys."""
    from conv3t.data.registry import (
        LOADER_OPTIONS,
        dataset_names,
        dataset_options,
        get_dataset,
        is_required,
        unknown_option_message,
    )

    name = data.get("dataset")
    if not name:
        raise ConfigError(f"{source}: data.dataset is required (one of {', '.join(dataset_names())})")
    try:
        get_dataset(name)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None
    options = dataset_options(name)
    for key in data:
        if key != "dataset" and key not in LOADER_OPTIONS and key not in options:
            raise ConfigError(f"{source}: {unknown_option_message(str(key), name)}")
    for key, default in options.items():
        if is_required(default) and data.get(key) is None:
            raise ConfigError(f"{source}: data.{key} is required for dataset {name!r}")


def validate_config(cfg: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Check ``cfg`` against the schema, fill in defaults, coerce types; returns a new dict.

    Raises :class:`ConfigError` naming ``source`` and the offending key.
    """
    full = merge(default_config(), cfg)
    out = _validate(full, SCHEMA, "", source)
    _check_data(out["data"], source)
    try:
        compile_options(out["model"]["compile"])
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None
    if out["sched"]["name"] == "plateau" and out["sched"]["warmup_epochs"] > 0:
        raise ConfigError(f"{source}: sched.warmup_epochs is not supported with sched.name=plateau")
    from conv3t.train.protocol_checks import check_protocol

    check_protocol(out, source)
    if out["optim"]["lr"] <= 0:
        raise ConfigError(f"{source}: optim.lr must be > 0, got {out['optim']['lr']}")
    if isinstance(out["trainer"]["strategy"], Mapping):
        _check_strategy(out["trainer"]["strategy"], source)
    max_time = out["trainer"].get("max_time")
    if isinstance(max_time, int | float) and not isinstance(max_time, bool):  # YAML read 1:00:00:00 in base 60
        raise ConfigError(
            f'{source}: trainer.max_time must be quoted "DD:HH:MM:SS" or a mapping such as {{hours: 20}}, got the '
            f"number {max_time} (YAML reads an unquoted 1:00:00:00 as a base-60 number)"
        )
    if out["checkpoint"]["every_n_epochs"] < 1:
        raise ConfigError(f"{source}: checkpoint.every_n_epochs must be >= 1")
    betas = out["optim"]["betas"]
    if len(betas) != 2 or not all(isinstance(b, int | float) for b in betas):
        raise ConfigError(f"{source}: optim.betas must be two numbers, got {betas!r}")
    return out


def load_config(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, apply dotted ``overrides`` (``{"optim.lr": 0.01}``) and validate it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror or err})") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(raw).__name__}")
    cfg = validate_config(raw, source=str(path))
    if overrides:
        cfg = validate_config(apply_overrides(cfg, overrides), source=f"{path} (with command-line overrides)")
    return cfg


def apply_overrides(cfg: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys: ``{"trainer.max_epochs": 3}`` sets ``cfg["trainer"]["max_epochs"] = 3``.

    Keys must exist in the schema (free-form sections such as ``data`` accept new keys).
    """
    out = copy.deepcopy(dict(cfg))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: dict[str, Any] = out
        schema: Any = SCHEMA
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(schema, Field) and dict in schema.types:
                schema = FREE  # a leaf that may be a mapping (trainer.strategy): --trainer.strategy.name ddp
            if schema is not FREE:
                if not isinstance(schema, Mapping) or part not in schema:
                    known = list(schema) if isinstance(schema, Mapping) else []
                    if not isinstance(schema, Mapping) or not _is_extra_key(
                        part, ".".join(parts[:i]), known, "command line"
                    ):
                        raise _unknown(part, ".".join(parts[:i]), known, "command line")
                    schema = FREE
                else:
                    schema = schema[part]
            if last:
                if isinstance(schema, Mapping) and schema is not FREE:
                    raise ConfigError(
                        f"command line: {dotted} is a section; set one of its keys, e.g. {dotted}.{next(iter(schema))}"
                    )
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return out


def parse_override_args(tokens: Sequence[str]) -> dict[str, Any]:
    """Turn ``["--optim.lr", "0.01", "--trainer.devices=2"]`` into ``{"optim.lr": 0.01, "trainer.devices": 2}``.

    Values are parsed as YAML scalars/lists (``3`` -> int, ``0.01`` -> float, ``null``, ``[1, 2]``, ``true``).
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--") or len(tok) <= 2:
            raise ConfigError(f"command line: expected an override like --section.key VALUE, got {tok!r}")
        key = tok[2:]
        if "=" in key:
            key, text = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(tokens):
                raise ConfigError(f"command line: override --{key} needs a value")
            text = tokens[i + 1]
            i += 2
        try:
            value = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            value = text
        out[key] = value
    return out


def dump_config(cfg: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the resolved config as YAML, atomically (temp file + rename)."""
    from conv3t.files import atomic_write

    path = Path(path)
    text = yaml.safe_dump(_plain(cfg), sort_keys=False, default_flow_style=None)
    atomic_write(path, text.encode())
    return path


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
