"""Exported weights: ``model.safetensors`` + ``model.json``, the hand-off from training to explanation.

A run directory written by ``conv3t train`` / ``conv3t demo`` holds these two files; the explain tools load
them without touching the trainer or its checkpoints. ``model.json`` records everything needed to rebuild
the network and feed it correctly::

    {
      "format": "conv3t-model", "format_version": 1,
      "model": "resnet10_3t",                      # registry name (conv3t.models.create_model)
      "model_kwargs": {"base_width": 16},          # architecture keywords of create_model only
      "num_classes": 9, "classes": ["static", ...],
      "clip": {"num_frames": 16, "size": [64, 64], "fps": 12},  # T and (H, W) it was trained on; fps if known
      "normalization": {"mean": [...], "std": [...]},       # per RGB channel, applied to [0, 1] pixels
      "data": {...}                                # the data config of the run (synthetic runs regenerate it)
    }

:func:`load_exported` gives the network with its description (:class:`ModelInfo`), its :class:`ModelMeta` (a
frozen summary: classes, frames, stride, fps, size, normalisation) and its ``transforms``, the
:class:`~conv3t.data.preprocessing.ClipPreprocessing` that turns a decoded video into the model's input, as
torchvision's video weights carry theirs. ``fps`` is optional (exports written before it was recorded, and data
without a frame rate, have none).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from conv3t.data.preprocessing import ClipPreprocessing
from conv3t.files import atomic_write

__all__ = [
    "ExportedModel",
    "ModelInfo",
    "ModelMeta",
    "check_classes",
    "check_model_kwargs",
    "load_exported",
    "read_meta",
    "save_exported",
]

FORMAT = "conv3t-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"


def check_classes(classes: Sequence[str], num_classes: int, source: str = "model.json") -> None:
    """:class:`ValueError` naming ``source`` unless ``classes`` holds ``num_classes`` distinct names.

    Class ``k`` is the model's logit ``k``: a list of another length, or with a name twice, would make a
    report name (or check) the wrong class.
    """
    if len(classes) != num_classes:
        raise ValueError(
            f"{source}: classes lists {len(classes)} names but num_classes is {num_classes}; "
            "class k must name the model's logit k, one name per logit"
        )
    repeated = sorted(name for name, count in Counter(classes).items() if count > 1)
    if repeated:
        raise ValueError(f"{source}: classes names {repeated} more than once; each logit needs its own name")


@dataclass(frozen=True)
class ModelInfo:
    """What ``model.json`` says about an exported model (``classes``: ``num_classes`` distinct names, class
    ``k`` = logit ``k``; :func:`check_classes`)."""

    model: str
    num_classes: int
    classes: list[str]
    num_frames: int
    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    fps: float | None = None  # frames per second of the training videos, when the data kind knows it

    def __post_init__(self) -> None:
        check_classes(list(self.classes), int(self.num_classes), "ModelInfo")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "model_kwargs": self.model_kwargs,
            "num_classes": self.num_classes,
            "classes": list(self.classes),
            "clip": {"num_frames": self.num_frames, "size": list(self.size)}
            | ({} if self.fps is None else {"fps": float(self.fps)}),
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
            "data": self.data,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str = "model.json") -> ModelInfo:
        if obj.get("format") != FORMAT:
            raise ValueError(f"{source}: not a conv3t model description (format={obj.get('format')!r})")
        if obj.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{source}: format_version {obj['format_version']} is newer than this conv3t "
                f"understands ({FORMAT_VERSION}); upgrade conv3t"
            )
        try:
            num_classes, classes = int(obj["num_classes"]), [str(c) for c in obj["classes"]]
            rest: dict[str, Any] = dict(
                model=str(obj["model"]),
                num_frames=int(obj["clip"]["num_frames"]),
                size=(int(obj["clip"]["size"][0]), int(obj["clip"]["size"][1])),
                mean=tuple(float(v) for v in obj["normalization"]["mean"]),
                std=tuple(float(v) for v in obj["normalization"]["std"]),
                model_kwargs=_mapping(obj.get("model_kwargs", {}), "model_kwargs", source),
                data=_mapping(obj.get("data", {}), "data", source),
                fps=None if obj["clip"].get("fps") is None else float(obj["clip"]["fps"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ValueError(f"{source}: missing or malformed field ({err!r})") from err
        check_classes(classes, num_classes, source)
        return cls(num_classes=num_classes, classes=classes, **rest)


def _mapping(value: Any, name: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{source}: {name} must be a JSON object, got {type(value).__name__}")
    return dict(value)


def check_model_kwargs(info: ModelInfo, source: str = "model.json") -> dict[str, Any]:
    """``info.model_kwargs`` if every key only shapes the architecture, else :class:`ValueError`.

    ``model.json`` describes a network; it must never make the loader read a file. ``pretrained`` (a path to
    2D weights), ``inflate``, ``num_classes`` (given by its own field) and anything that is not one of the
    model's :func:`~conv3t.models.architecture_kwargs` are refused, with the file and the key in the message.
    """
    from conv3t.models import architecture_kwargs

    allowed = architecture_kwargs(info.model)
    for key in info.model_kwargs:
        if key not in allowed:
            raise ValueError(
                f"{source}: model_kwargs key {key!r} is not an architecture setting of {info.model} and is "
                f"refused (an export is rebuilt from its own weights, never from another file); allowed: "
                f"{', '.join(allowed)}"
            )
    return dict(info.model_kwargs)


@dataclass(frozen=True)
class ModelMeta:
    """What a user of a trained model needs to know to feed it and read its output (torchvision's
    ``Weights.meta``): ``classes[k]`` names logit ``k``; clips are ``num_frames`` frames ``frame_stride`` apart
    of ``size`` ``(H, W)`` pixels, normalised with ``mean``/``std`` (per RGB channel, pixels in [0, 1]); ``fps``
    is the training videos' frame rate (None where unknown); ``dataset`` the data kind it was trained on."""

    model: str
    classes: tuple[str, ...]
    num_frames: int
    frame_stride: int
    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    fps: float | None = None
    dataset: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def clip_seconds(self) -> float | None:
        """The time one clip spans in the source video, in seconds (None without ``fps``)."""
        return None if not self.fps else self.num_frames * self.frame_stride / self.fps

    @classmethod
    def from_info(cls, info: ModelInfo) -> ModelMeta:
        """The meta of a ``model.json``; the stride comes from its data config (1 where it records none)."""
        dataset = info.data.get("dataset")
        return cls(
            model=info.model,
            classes=tuple(info.classes),
            num_frames=int(info.num_frames),
            frame_stride=int(info.data.get("frame_stride", 1) or 1),
            size=(int(info.size[0]), int(info.size[1])),
            mean=tuple(float(v) for v in info.mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in info.std),  # type: ignore[arg-type]
            fps=None if info.fps is None else float(info.fps),
            dataset=None if dataset is None else str(dataset),
        )

    def transforms(self) -> ClipPreprocessing:
        """The evaluation preprocessing of these clips: decoded video ``uint8 (N, 3, h, w)`` -> ``(3, T, H, W)``."""
        return ClipPreprocessing(self.num_frames, self.size, self.mean, self.std, self.frame_stride)


@dataclass
class ExportedModel:
    """A loaded export: the network (in eval mode), its description, its :class:`ModelMeta` and ``transforms``
    (the :class:`~conv3t.data.preprocessing.ClipPreprocessing` from a decoded video to its input)."""

    model: nn.Module
    info: ModelInfo
    path: Path

    @cached_property
    def meta(self) -> ModelMeta:
        return ModelMeta.from_info(self.info)

    @cached_property
    def transforms(self) -> ClipPreprocessing:
        return self.meta.transforms()


def save_exported(model: nn.Module, directory: str | os.PathLike[str], info: ModelInfo) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/model.json`` atomically; returns the directory.

    ``info`` is not changed. A model with an ``export_kwargs()`` method (GoogLeNet) adds the build-time choices it
    returns to the recorded ``model_kwargs`` where ``info`` does not set them, so that :func:`load_exported`
    rebuilds the same network."""
    from safetensors.torch import save

    directory = Path(directory)
    model = getattr(model, "_orig_mod", model)  # torch.compile(model): the plain network's keys, no _orig_mod.
    resolved = model.export_kwargs() if callable(getattr(model, "export_kwargs", None)) else {}
    extra = {k: v for k, v in resolved.items() if k not in info.model_kwargs}
    info = dataclasses.replace(info, model_kwargs={**info.model_kwargs, **extra})
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(directory / WEIGHTS_FILE, save(state, metadata={"format": FORMAT}))
    text = json.dumps(info.to_json(), indent=2, sort_keys=False) + "\n"
    atomic_write(directory / INFO_FILE, text.encode())
    return directory


def _locate(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        weights, meta = path / WEIGHTS_FILE, path / INFO_FILE
    elif path.suffix == ".safetensors":
        weights, meta = path, path.with_name(INFO_FILE)
    elif path.name == INFO_FILE:
        weights, meta = path.with_name(WEIGHTS_FILE), path
    else:
        raise ValueError(f"{path}: expected a run directory, a model.safetensors file or a model.json file")
    for f in (weights, meta):
        if not f.is_file():
            raise FileNotFoundError(
                f"{f} not found: a conv3t export is model.safetensors + model.json side by side "
                "(written by `conv3t train` and `conv3t demo`)"
            )
    return weights, meta


def _read_info(meta: Path) -> ModelInfo:
    try:
        return ModelInfo.from_json(json.loads(meta.read_text()), source=str(meta))
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta}: not valid JSON ({err})") from err


def read_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """The :class:`ModelMeta` of a run directory, ``model.safetensors`` or ``model.json``, without building the
    network (reads ``model.json`` only)."""
    return ModelMeta.from_info(_read_info(_locate(Path(path))[1]))


def load_exported(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> ExportedModel:
    """Rebuild a model from a run directory, its ``model.safetensors`` or its ``model.json``.

    Weights are read with safetensors (no unpickling); ``model.json`` may set only architecture keywords
    (:func:`check_model_kwargs`), so it cannot make the loader open any other file. The model is returned in
    eval mode.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from conv3t.models import create_model

    weights, meta = _locate(Path(path))
    info = _read_info(meta)
    kwargs = check_model_kwargs(info, source=str(meta))
    model = create_model(info.model, num_classes=info.num_classes, pretrained=None, **kwargs)
    try:
        state = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights}: cannot read safetensors weights ({err})") from err
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not match {info.model}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
        )
    model.to(device).eval()
    return ExportedModel(model=model, info=info, path=Path(path))
