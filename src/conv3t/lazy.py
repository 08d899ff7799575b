"""Names a package exports but imports on first use (PEP 562), so that importing the package stays cheap.

``conv3t.explain`` must not load captum, matplotlib or Lightning for ``from conv3t.explain import logits``;
``conv3t.data`` must not load Lightning for its preprocessing. Each such package lists where its names live and
gets its module ``__getattr__`` and ``__dir__`` from :func:`lazy_exports`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: MutableMapping[str, Any], where: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the module ``package`` whose globals are ``namespace``: a name in
    ``where`` (name -> the module that defines it) is imported from there when first asked for and kept in
    ``namespace``, so it is imported once; any other name raises ``AttributeError`` as a module would."""

    def __getattr__(name: str) -> object:
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*namespace, *where])

    return __getattr__, __dir__
