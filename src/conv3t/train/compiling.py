"""``model.compile``: train the network through ``torch.compile`` (config value checks and the compile itself).

``model.compile`` is ``false`` (default), ``true`` (``torch.compile`` with its defaults: the inductor backend)
or a mapping of ``torch.compile`` keywords, e.g. ``{fullgraph: true, mode: max-autotune}``. The network is
compiled in place (:meth:`torch.nn.Module.compile`): its parameters, state dict keys, checkpoints and the
exported ``model.safetensors`` are those of the plain network (no ``_orig_mod.`` prefix), so a compiled run
resumes uncompiled and the other way round. Conv3T layers compile without a graph break (issue 20).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["COMPILE_KEYS", "CompileOptions", "apply_compile", "compile_options"]

#: the ``torch.compile`` keywords accepted under ``model.compile`` and the types of their values
COMPILE_KEYS: dict[str, tuple[type, ...]] = {
    "fullgraph": (bool,),
    "dynamic": (bool, type(None)),
    "backend": (str,),
    "mode": (str, type(None)),
    "options": (dict,),
    "disable": (bool,),
}


@dataclass(frozen=True)
class CompileOptions:
    """Whether to compile and the ``torch.compile`` keywords (``kwargs``) to compile with."""

    enabled: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)


def _backends() -> list[str]:
    import torch._dynamo

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


def _modes() -> list[str]:
    import torch._inductor

    return sorted(torch._inductor.list_mode_options())


def _check_value(key: str, value: Any, path: str) -> None:
    types = COMPILE_KEYS[key]
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ValueError(f"{path}.{key} must be {names}, got {value!r}")
    if key == "backend" and value not in _backends():
        raise ValueError(f"{path}.backend must be a torch.compile backend ({', '.join(_backends())}), got {value!r}")
    if key == "mode" and value is not None and value not in _modes():
        raise ValueError(f"{path}.mode must be one of {', '.join(_modes())}, got {value!r}")
    if key == "options" and not all(isinstance(k, str) for k in value):
        raise ValueError(f"{path}.options must map inductor option names to values, got {value!r}")


def compile_options(value: Any, path: str = "model.compile") -> CompileOptions:
    """Read ``model.compile``: ``bool`` or a mapping of ``torch.compile`` keywords (see :data:`COMPILE_KEYS`).

    Raises ``ValueError`` naming ``path`` and the key for an unknown keyword or a value of the wrong kind.
    """
    if isinstance(value, bool):
        return CompileOptions(enabled=value)
    if value is None:
        return CompileOptions()
    if not isinstance(value, Mapping):
        raise ValueError(f"{path} must be true/false or a mapping of torch.compile keywords, got {value!r}")
    for key, item in value.items():
        if key not in COMPILE_KEYS:
            raise ValueError(f"{path}: unknown torch.compile keyword {key!r}; known: {', '.join(COMPILE_KEYS)}")
        _check_value(str(key), item, path)
    return CompileOptions(enabled=not value.get("disable", False), kwargs=dict(value))


def apply_compile(model: nn.Module, options: CompileOptions) -> nn.Module:
    """Compile ``model`` in place when ``options.enabled`` (state dict unchanged); returns ``model``."""
    if options.enabled:
        model.compile(**options.kwargs)
    return model
