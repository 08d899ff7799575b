"""The dataset registry: every dataset kind under the name a config gives as ``data.dataset``.

A dataset kind is a keyword-only dataclass derived from :class:`DatasetSource`, registered with
:func:`register_dataset`. Its fields are its config options (the ``data:`` keys besides
``dataset`` and the loader keys of :data:`LOADER_OPTIONS`), so the options are checked against
its own signature; its methods give the class list, the flip-label map, the dataset of each
split and the checker behind ``conv3t data check``::

    @register_dataset("my_clips")
    @dataclass(kw_only=True)
    class MyClips(DatasetSource):
        root: str                      # required: no default
        num_frames: int = 16
        size: int | Sequence[int] = 112

        def read_classes(self) -> list[str]: ...
        def dataset(self, split: str) -> Dataset: ...

The built-in kinds register themselves when :mod:`conv3t.data` is imported; an installed package
registers more through the ``conv3t.datasets`` entry-point group (see docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from torch.utils.data import Dataset

from conv3t.data.scan import CheckReport

__all__ = [
    "ENTRY_POINT_GROUP",
    "LOADER_OPTIONS",
    "REQUIRED",
    "SPLITS",
    "DatasetSource",
    "as_size",
    "create_source",
    "data_config_keys",
    "dataset_names",
    "dataset_options",
    "describe_data",
    "get_dataset",
    "is_required",
    "load_plugins",
    "register_dataset",
    "unknown_option_message",
]

SPLITS = ("train", "val", "test")

#: ``data:`` keys that configure the DataLoaders (same for every dataset kind), with defaults.
#: ``pin_memory`` None = when CUDA is available; ``persistent_workers`` None = when ``num_workers > 0``.
LOADER_OPTIONS: dict[str, Any] = {"batch_size": 8, "num_workers": 0, "pin_memory": None, "persistent_workers": None}

_REGISTRY: dict[str, type[DatasetSource]] = {}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default :func:`dataset_options` shows for an option without a default.
REQUIRED = _Required()


def as_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``(H, W)`` from an int (square) or a pair."""
    if isinstance(size, int) and not isinstance(size, bool):
        return int(size), int(size)
    if isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"data.size must be an int or [H, W], got {size!r}")


class DatasetSource:
    """Base of a registered dataset kind: one configured dataset with its train / val / test splits.

    Subclasses are ``@dataclass(kw_only=True)`` whose fields are the options. They must have the
    fields ``num_frames`` (``T``) and ``size`` (``(H, W)`` after :meth:`__post_init__`), implement
    :meth:`read_classes` and :meth:`dataset`, and may override :meth:`flip_label_map`,
    :meth:`reverse_label_map` and :meth:`check`.
    """

    name: ClassVar[str] = ""
    #: Frames per second of the kind's videos where it is one known rate (recorded in ``model.json``), else None.
    fps: ClassVar[float | None] = None
    num_frames: int
    size: tuple[int, int]
    flip: bool = False

    def __post_init__(self) -> None:
        self.size = as_size(self.size)
        if int(self.num_frames) < 1:
            raise ValueError(f"data.num_frames must be >= 1, got {self.num_frames}")

    def read_classes(self) -> list[str]:
        """Class names in label order (read once by :meth:`class_names`)."""
        raise NotImplementedError

    def class_names(self) -> list[str]:
        """Class names in label order; reads only what names the classes (a labels file, folder names)."""
        cache = self.__dict__.get("_classes")
        if cache is None:
            cache = self.__dict__["_classes"] = list(self.read_classes())
        return list(cache)

    def flip_label_map(self) -> dict[int, int]:
        """Label swaps under a horizontal mirror (``{}``: a mirror keeps every label)."""
        return {}

    def reverse_label_map(self) -> dict[int, int] | None:
        """Label swaps when a clip is played backwards; None when time reversal is not label-safe."""
        return None

    def describe(self) -> str:
        """A short label of the data for pages and tables (the registered name unless a kind says more)."""
        return self.name

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split``: ``"train"`` (augmented), ``"val"`` (one centre clip per video) or
        ``"test"`` (for file-backed kinds the multi-view protocol). Items are ``(clip, label)``."""
        raise NotImplementedError

    def check(
        self,
        *,
        decode: bool = False,
        workers: int = 1,
        on_start: Callable[[int], None] | None = None,
        on_video: Callable[[], None] | None = None,
    ) -> CheckReport:
        """Every problem of the data on disk (``conv3t data check``); ``on_start(n)`` / ``on_video()``
        drive a progress bar."""
        return CheckReport(self.name, note="nothing on disk to check")


S = TypeVar("S", bound=type[DatasetSource])


def register_dataset(name: str) -> Callable[[S], S]:
    """Class decorator: register a :class:`DatasetSource` dataclass under ``name``."""

    def deco(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, DatasetSource) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"register_dataset({name!r}): {cls!r} must be a DatasetSource dataclass")
        old = _REGISTRY.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"dataset {name!r} is already registered by {old.__module__}.{old.__qualname__}")
        taken = set(LOADER_OPTIONS) & {f.name for f in dataclasses.fields(cls)}
        if taken:
            raise TypeError(f"dataset {name!r}: options {sorted(taken)} are the data module's loader options")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


#: Entry-point group through which an installed package registers dataset kinds: each entry point names a
#: module that calls :func:`register_dataset` when imported.
ENTRY_POINT_GROUP = "conv3t.datasets"
_plugins_loaded = False


def load_plugins() -> None:
    """Import the modules of the ``conv3t.datasets`` entry points (once), so their datasets register."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def dataset_names() -> list[str]:
    """The registered dataset names (built-in and from installed plugins), sorted."""
    load_plugins()
    return sorted(_REGISTRY)


def get_dataset(name: str) -> type[DatasetSource]:
    """The class registered as ``name``; ``ValueError`` (with the closest name) if there is none."""
    if isinstance(name, str) and name not in _REGISTRY:
        load_plugins()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"data.dataset must be one of {dataset_names()}, got {name!r}{hint}") from None


def dataset_options(name: str) -> dict[str, Any]:
    """The options of dataset ``name`` with their defaults (required ones map to ``REQUIRED``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(get_dataset(name)):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = REQUIRED
    return out


def is_required(default: Any) -> bool:
    """Whether a value of :func:`dataset_options` marks a required option."""
    return default is REQUIRED


def data_config_keys(name: str) -> list[str]:
    """Every key a ``data:`` section with ``dataset: name`` accepts."""
    return sorted(["dataset", *LOADER_OPTIONS, *dataset_options(name)])


def unknown_option_message(key: str, name: str) -> str:
    """Why ``data.key`` is refused for dataset ``name``: closest option, or the kinds that have it."""
    known = data_config_keys(name)
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        hint = f" (did you mean {close[0]!r}?)"
    else:
        owners = [n for n in dataset_names() if n != name and key in dataset_options(n)]
        hint = f" (an option of {', '.join(owners)})" if owners else ""
    return f"unknown config key 'data.{key}'{hint}; dataset {name!r} takes: {', '.join(known)}"


def create_source(name: str, options: Mapping[str, Any]) -> DatasetSource:
    """Build dataset ``name`` from its ``options`` (no ``dataset`` or loader keys).

    None values mean "the default". Raises ``ValueError`` naming an unknown option (with the
    closest name) or a missing required one.
    """
    cls = get_dataset(name)
    accepted = dataset_options(name)
    for key in options:
        if key not in accepted:
            raise ValueError(unknown_option_message(str(key), name))
    given = {k: v for k, v in options.items() if v is not None}
    missing = [k for k, v in accepted.items() if is_required(v) and k not in given]
    if missing:
        raise ValueError(f"data.{missing[0]} is required for dataset {name!r}")
    return cls(**given)


def describe_data(data: Mapping[str, Any]) -> str:
    """:meth:`DatasetSource.describe` of a recorded ``data:`` section, without reading any file;
    the bare name when the section no longer builds (e.g. a dataset kind that is not installed here)."""
    name = str(data.get("dataset", "") or "")
    if not name:
        return "unknown data"
    options = {k: v for k, v in data.items() if k != "dataset" and k not in LOADER_OPTIONS}
    try:
        return create_source(name, options).describe()
    except (ValueError, TypeError):
        return name
