"""Reading an experiment config: YAML file -> dotted overrides -> one validation -> :class:`ExperimentConfig`.

The schema (every key, type, default and range) is :mod:`conv3t.train.schema`; this module checks a raw mapping
against it in one pass and then the relations between keys, so a config that loads is complete: a run never
finds a bad setting after it has written anything. Every error is a :class:`ConfigError` that starts with the
source (the file, ``... (with command-line overrides)``, ``conv3t demo``, ...) and names the dotted key; an
unknown key gets the closest known one. Values are coerced to their field's type where that is unambiguous, so
``lr: 1e-3`` (a string to YAML 1.1) still becomes a float and ``max_epochs: 3.0`` an int.

The ``data`` section is checked against the registered dataset kind's options and ``model.kwargs`` against the
model's keyword arguments; ``trainer`` accepts every ``lightning.Trainer`` argument. Command-line overrides
(``--optim.lr 0.01``) are dotted keys of the same schema (:func:`override_keys` lists them), applied to the raw
mapping before the one validation.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from conv3t.train.compiling import compile_options
from conv3t.train.schema import REST, DataConfig, ExperimentConfig, to_plain
from conv3t.train.trainer_options import TRAINER_RESERVED, strategy_keys, strategy_names, trainer_arguments

__all__ = [
    "ConfigError",
    "apply_overrides",
    "config_text",
    "data_section",
    "dump_config",
    "load_config",
    "merge",
    "override_keys",
    "parse_override_args",
    "read_section",
    "read_yaml",
    "validate_config",
]


class ConfigError(ValueError):
    """A config file or override is malformed; the message names the source and the dotted key."""


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``update`` wins; nested mappings are merged, everything else replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def unknown_key(key: str, where: str, known: Sequence[str], source: str) -> ConfigError:
    """The error for ``where.key`` not in ``known``, with the closest known key."""
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    path = f"{where}.{key}" if where else key
    return ConfigError(f"{source}: unknown config key {path!r}{hint}; known keys here: {', '.join(sorted(known))}")


def _extra_keys(where: str) -> frozenset[str]:
    """The extra keys a section lists in its errors (``trainer``: Lightning's; ``data``: the kind's, named later)."""
    return trainer_arguments() if where == "trainer" else frozenset()


def accepts_extra(where: str, key: str, source: str) -> bool:
    """Whether section ``where`` takes ``key`` beyond its fields (its ``rest`` field holds it)."""
    if where == "data":
        return True  # the dataset kind's own options: checked by _check_data once the kind is known
    if where == "trainer":
        if key in TRAINER_RESERVED:
            raise ConfigError(f"{source}: trainer.{key} is set by conv3t; use {TRAINER_RESERVED[key]} instead")
        return key in trainer_arguments()
    return False


# ------------------------------------------------------------------------------------------------- coercion
_NAMES = {int: "an integer", float: "a number", bool: "true/false", str: "a string", dict: "a mapping",
          tuple: "a list"}  # fmt: skip


def _error(source: str, path: str, what: str, value: Any) -> ConfigError:
    return ConfigError(f"{source}: {path} must be {what}, got {value!r}")


def _scalar(value: Any, kind: type, path: str, source: str) -> Any:
    """``value`` as ``kind`` (int, float, bool, str), or raise; bools never pass as numbers."""
    if isinstance(value, bool) and kind is not bool:
        raise _error(source, path, _NAMES[kind], value)
    if kind is float and isinstance(value, int | float | str):
        try:
            return float(value)
        except ValueError:
            raise _error(source, path, "a number", value) from None
    if kind is int and isinstance(value, int | float | str):
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            raise _error(source, path, "an integer", value) from None
        if isinstance(number, float) and not number.is_integer():
            raise _error(source, path, "an integer", value)
        return int(number)
    if isinstance(value, kind):
        return value
    raise _error(source, path, _NAMES.get(kind, kind.__name__), value)


def _coerce(value: Any, hint: Any, path: str, source: str) -> Any:
    """``value`` converted to the type ``hint`` (a schema field's annotation)."""
    if hint is Any:
        return copy.deepcopy(value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in args if a is not type(None)]
        if value is None:
            if len(options) < len(args):
                return None
            raise ConfigError(f"{source}: {path} must not be null")
        # the option whose kind matches the value first (a mapping to dict, a list to tuple), then coercions
        for option in sorted(options, key=lambda a: not isinstance(value, typing.get_origin(a) or a)):
            try:
                return _coerce(value, option, path, source)
            except ConfigError:
                continue
        raise _error(source, path, " or ".join(_NAMES.get(typing.get_origin(a) or a, str(a)) for a in options), value)
    if value is None:
        raise ConfigError(f"{source}: {path} must not be null")
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _error(source, path, "a mapping", value)
        return copy.deepcopy(dict(value))
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _error(source, path, "a list", value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise _error(source, path, f"a list of {len(args)}", value)
        return tuple(_coerce(v, a, f"{path}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    return _scalar(value, hint, path, source)


def _check_bounds(value: Any, meta: Mapping[str, Any], path: str, source: str) -> None:
    """The field's ``choices`` (strings) and numeric bounds (numbers, and every number of a tuple)."""
    choices = meta.get("choices")
    if choices is not None and isinstance(value, str) and value not in choices:
        raise ConfigError(f"{source}: {path} must be one of {list(choices)}, got {value!r}")
    numbers = value if isinstance(value, tuple) else (value,)
    for number in numbers:
        if not isinstance(number, int | float) or isinstance(number, bool):
            continue
        for bound, ok, word in (("ge", number.__ge__, ">="), ("gt", number.__gt__, ">"),
                                ("le", number.__le__, "<="), ("lt", number.__lt__, "<")):  # fmt: skip
            if meta.get(bound) is not None and not ok(meta[bound]):
                raise ConfigError(f"{source}: {path} must be {word} {meta[bound]:g}, got {value!r}")


def read_section(cls: type, raw: Any, where: str, source: str) -> Any:
    """An instance of the schema dataclass ``cls`` from the mapping ``raw`` (YAML section ``where``).

    Missing keys take the field's default; required ones (no default) must be given; unknown keys are errors
    unless the section has a ``rest`` field that accepts them (:func:`accepts_extra`).
    """
    label = where or "the config"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: {label} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get(REST)}
    rest_field = next((f.name for f in dataclasses.fields(cls) if f.metadata.get(REST)), None)
    values: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        path = f"{where}.{key}" if where else key
        if key not in fields:
            if rest_field is None or not accepts_extra(where, key, source):
                raise unknown_key(key, where, [*fields, *_extra_keys(where)], source)
            rest[key] = copy.deepcopy(value)
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = read_section(hint, value, path, source)
            continue
        values[key] = _coerce(value, hint, path, source)
        _check_bounds(values[key], fields[key].metadata, path, source)
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            path = f"{where}.{name}" if where else name
            if dataclasses.is_dataclass(hints[name]):  # a required section: name its first required key
                values[name] = read_section(hints[name], {}, path, source)
                continue
            raise ConfigError(f"{source}: {path} is required")
    if rest_field is not None:
        values[rest_field] = rest
    return cls(**values)


# ------------------------------------------------------------------------------------------------ relations
def _check_data(data: Any, source: str) -> None:
    """The ``data:`` options against the registered dataset kind's options, and their values as the kind
    checks them when it is built (``data.test_crops must be 1 or 3``; building a source reads no file)."""
    from conv3t.data.registry import (
        create_source,
        dataset_names,
        dataset_options,
        get_dataset,
        is_required,
        unknown_option_message,
    )

    try:
        get_dataset(data.dataset)
    except ValueError as err:
        raise ConfigError(f"{source}: data.dataset: {err} (registered: {', '.join(dataset_names())})") from None
    options = dataset_options(data.dataset)
    for key in data.options:
        if key not in options:
            raise ConfigError(f"{source}: {unknown_option_message(str(key), data.dataset)}")
    for key, default in options.items():
        if is_required(default) and data.options.get(key) is None:
            raise ConfigError(f"{source}: data.{key} is required for dataset {data.dataset!r}")
    try:
        create_source(data.dataset, data.options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: data ({data.dataset}): {err}") from None


def _check_model(model: Any, source: str) -> None:
    """``model.name`` is registered and ``model.kwargs`` are its keyword arguments; ``model.compile`` parses."""
    from conv3t.models import model_spec

    try:
        spec = model_spec(model.name)
    except ValueError as err:
        raise ConfigError(f"{source}: model.name: {err}") from None
    for key in model.kwargs:
        if key not in spec.kwargs:
            raise unknown_key(str(key), "model.kwargs", list(spec.kwargs), source)
    try:
        compile_options(model.compile)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None


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
            raise unknown_key(str(key), "trainer.strategy", ["name", *accepted], source)


def _check_relations(cfg: ExperimentConfig, source: str) -> None:
    """Checks that involve more than one key (each error names the keys)."""
    sched = cfg.sched
    if sched.name == "plateau" and sched.warmup_epochs > 0:
        raise ConfigError(f"{source}: sched.warmup_epochs is not supported with sched.name=plateau")
    if sched.plateau_patience % sched.plateau_every_n_epochs:
        raise ConfigError(
            f"{source}: sched.plateau_patience ({sched.plateau_patience} epochs) must be a multiple of "
            f"sched.plateau_every_n_epochs ({sched.plateau_every_n_epochs}): the rate can only change at a check"
        )
    epochs, steps = cfg.trainer.max_epochs, cfg.trainer.max_steps
    if epochs < 1 and not (epochs == -1 and steps > 0):  # the schedules need a finite number of steps
        raise ConfigError(
            f"{source}: trainer.max_epochs must be >= 1, or -1 (no epoch limit) with trainer.max_steps > 0; "
            f"got max_epochs={epochs}, max_steps={steps}"
        )
    if isinstance(cfg.trainer.strategy, Mapping):
        _check_strategy(cfg.trainer.strategy, source)
    max_time = cfg.trainer.extra.get("max_time")
    if isinstance(max_time, int | float) and not isinstance(max_time, bool):  # YAML read 1:00:00:00 in base 60
        raise ConfigError(
            f'{source}: trainer.max_time must be quoted "DD:HH:MM:SS" or a mapping such as {{hours: 20}}, got the '
            f"number {max_time} (YAML reads an unquoted 1:00:00:00 as a base-60 number)"
        )


def validate_config(
    cfg: Mapping[str, Any] | ExperimentConfig, source: str = "config", *, check_data: bool = True
) -> ExperimentConfig:
    """Check a raw config mapping completely and return it typed, with every default filled in.

    Raises :class:`ConfigError` naming ``source`` and the offending dotted key. An :class:`ExperimentConfig`
    built in code (its dataclasses check nothing themselves) is checked the same way, through its plain form.
    ``check_data=False`` leaves out the check of the ``data`` keys against the registered dataset kind (a
    checkpoint's model loads where the dataset plugin it was trained on is not installed).
    """
    if isinstance(cfg, ExperimentConfig):
        cfg = cfg.to_dict()
    if isinstance(cfg, Mapping):
        misplaced = sorted(k for k in ("name", "dataset", "lr", "max_epochs", "batch_size") if k in cfg)
        if misplaced:  # a flat config: say which section the key belongs in
            raise ConfigError(
                f"{source}: {misplaced[0]!r} must sit in its section (model.name, data.dataset, optim.lr, "
                "trainer.max_epochs, data.batch_size); see configs/ for the layout"
            )
    out = read_section(ExperimentConfig, cfg, "", source)
    _check_model(out.model, source)
    if check_data:
        _check_data(out.data, source)
    _check_relations(out, source)
    return out


def data_section(raw: Any, source: str) -> DataConfig:
    """A ``data:`` mapping (a bare section, or the ``data`` of a whole config) checked completely, typed."""
    if isinstance(raw, Mapping) and isinstance(raw.get("data"), Mapping):
        raw = raw["data"]
    data = read_section(DataConfig, raw, "data", source)
    _check_data(data, source)
    return data


def read_yaml(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """A YAML file's mapping (empty file: ``{}``); :class:`ConfigError` naming the file otherwise."""
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
    return raw


def load_config(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML config, apply dotted ``overrides`` (``{"optim.lr": 0.01}``) and validate it."""
    raw = read_yaml(path)
    cfg = validate_config(raw, source=str(path))
    if overrides:
        cfg = validate_config(apply_overrides(raw, overrides), source=f"{path} (with command-line overrides)")
    return cfg


def config_text(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML text (what ``config.yaml`` holds and ``--dry-run`` prints)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)


def dump_config(cfg: ExperimentConfig, path: str | os.PathLike[str]) -> Path:
    """Write the resolved config as YAML, atomically (temp file + rename)."""
    from conv3t.files import atomic_write

    path = Path(path)
    atomic_write(path, config_text(cfg).encode())
    return path


# ------------------------------------------------------------------------------------------------ overrides
@dataclasses.dataclass(frozen=True)
class OverrideKey:
    """One ``--section.key`` option of the schema: its dotted name, type, default and allowed values."""

    dotted: str
    hint: Any
    default: Any
    meta: Mapping[str, Any]

    def help(self) -> str:
        """``float; default 0.001; > 0``: the type, the default and what is allowed."""
        kind = getattr(self.hint, "__name__", None) or str(self.hint).replace("typing.", "")
        kind = "any YAML value" if self.hint is Any else kind
        parts = [kind, f"default {self.default!r}" if self.default is not dataclasses.MISSING else "required"]
        if self.meta.get("choices"):
            parts.append(f"one of {', '.join(map(str, self.meta['choices']))}")
        words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        parts += [f"{word} {self.meta[b]:g}" for b, word in words.items() if self.meta.get(b) is not None]
        return "; ".join(parts)


def override_keys(cls: type = ExperimentConfig, prefix: str = "") -> list[OverrideKey]:
    """Every leaf key of the schema as a dotted override, in YAML order (``rest`` fields left out: their keys
    depend on the dataset kind / Lightning, and are accepted as overrides all the same)."""
    hints = typing.get_type_hints(cls)
    out: list[OverrideKey] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get(REST):
            continue
        dotted = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            out += override_keys(hints[f.name], f"{dotted}.")
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append(OverrideKey(dotted, hints[f.name], to_plain(default), dict(f.metadata)))
    return out


def _takes_mapping(hint: Any) -> bool:
    return hint is dict or typing.get_origin(hint) is dict or any(_takes_mapping(a) for a in typing.get_args(hint))


def apply_overrides(raw: Mapping[str, Any] | ExperimentConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys of a raw config: ``{"trainer.max_epochs": 3}`` sets ``raw["trainer"]["max_epochs"]``.

    Keys must exist in the schema; below a mapping-valued key (``model.kwargs``, ``trainer.strategy``) and in
    the ``data`` / ``trainer`` sections' extra keys any name is accepted here and checked by validation.
    Returns a new raw mapping (validate it with :func:`validate_config`).
    """
    out = raw.to_dict() if isinstance(raw, ExperimentConfig) else copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        cls: Any = ExperimentConfig  # None once below the schema (a mapping-valued key or an extra key)
        node: dict[str, Any] = out
        for i, part in enumerate(parts):
            where, last = ".".join(parts[:i]), i == len(parts) - 1
            if cls is not None:
                fields = {f.name for f in dataclasses.fields(cls) if not f.metadata.get(REST)}
                has_rest = len(fields) < len(dataclasses.fields(cls))
                if part in fields:
                    hint = typing.get_type_hints(cls)[part]
                    cls = hint if dataclasses.is_dataclass(hint) else None
                    if last and cls is not None:
                        first = dataclasses.fields(cls)[0].name
                        raise ConfigError(f"command line: {dotted} is a section; set one of its keys, e.g. "
                                          f"{dotted}.{first}")  # fmt: skip
                    if not last and cls is None and not _takes_mapping(hint):
                        raise ConfigError(f"command line: {'.'.join(parts[: i + 1])} is a value, not a section")
                elif has_rest and accepts_extra(where, part, "command line"):
                    cls = None
                else:
                    raise unknown_key(part, where, [*fields, *_extra_keys(where)], "command line")
            if last:
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
        out[key] = parse_value(text)
    return out


def parse_value(text: str) -> Any:
    """A command-line value read as YAML (``3``, ``0.01``, ``null``, ``[150, 224]``); other text stays text."""
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text
