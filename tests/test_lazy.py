"""conv3t.lazy: names imported on first use, once, and the module's error for anything else."""

from __future__ import annotations

import sys
import types

import pytest

from conv3t.lazy import lazy_exports


def test_a_name_is_imported_on_first_use_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    source = types.ModuleType("fake_source_for_lazy")
    source.value = object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_source_for_lazy", source)
    namespace: dict[str, object] = {"kept": 1}
    getattr_, dir_ = lazy_exports("pkg", namespace, {"value": "fake_source_for_lazy"})
    assert "value" not in namespace and dir_() == ["kept", "value"]
    assert getattr_("value") is source.value  # type: ignore[attr-defined]
    assert namespace["value"] is source.value  # type: ignore[attr-defined]  # the next lookup skips __getattr__
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'other'"):
        getattr_("other")


@pytest.mark.parametrize("package", ["conv3t.explain", "conv3t.explain.methods", "conv3t.explain.report"])
def test_a_lazy_package_exports_each_name_from_a_module_that_exports_it(package: str) -> None:
    """The lazy name maps repeat their modules' names so as not to import them; each must be one its module
    declares in ``__all__`` and resolves (a map that drifted from its module would hand out a stale name)."""
    import importlib

    pkg = importlib.import_module(package)
    shadowed = []
    for name in pkg.__all__:
        module = importlib.import_module(pkg._WHERE[name])
        assert name in getattr(module, "__all__", ()), f"{package}.{name}: not in {module.__name__}.__all__"
        if module.__name__ == f"{package}.{name}":
            # a name that is also the submodule defining it: once the submodule is imported, the import system
            # binds the package attribute to the module and the name no longer reaches the function (known)
            shadowed.append(name)
            continue
        assert getattr(pkg, name) is getattr(module, name)
    assert shadowed == (["frame_attribution"] if package == "conv3t.explain.methods" else [])
