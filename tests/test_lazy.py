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
