"""Writing a page: the one Jinja2 page template (``page.html``, autoescape on), its macros for the fragments
sections share (``fragments.html``) and the one stylesheet (``report.css``), all package data read with
:mod:`importlib.resources`.

The report, the comparison and the verification page all go through :func:`write_page`. Sections build their
bodies with the macros (:func:`macros`: ``figure``, ``kv_table``, ``table``, ``card``), which escape every
value, or with :class:`markupsafe.Markup` and :func:`markupsafe.escape`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from conv3t.explain.report.render.section import Section
from conv3t.files import atomic_write

__all__ = ["FRAGMENTS", "STYLESHEET", "TEMPLATE", "macros", "navigation", "render_page", "slug", "write_page"]

TEMPLATE = "page.html"
FRAGMENTS = "fragments.html"
STYLESHEET = "report.css"


def _package_file(name: str) -> str:
    return resources.files("conv3t.explain.report.render").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_package_file),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def macros() -> Any:
    """The template's macros as callables returning Markup, e.g. ``macros().figure(Figure("a.png", "A"))``."""
    return _environment().get_template(FRAGMENTS).module


def slug(name: str) -> str:
    """An element id for a layer name (``layer1.0.conv1`` -> ``layer1_0_conv1``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name) or "model"


def navigation(sections: Sequence[Section]) -> list[tuple[str, str]]:
    """``(id, label)`` of every section that has an id and asks to be listed, in page order."""
    return [(s.id, s.nav_label) for s in sections if s.id and s.in_nav and s.wrap]


def render_page(
    *, title: str, heading: str, sections: Sequence[Section], footer: Markup | str, nav: bool = True
) -> str:
    """The page's HTML: ``<title>`` ``title``, ``<h1>`` ``heading``, a navigation from the sections (if
    ``nav``), the sections in order and the footer."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=title,
            heading=heading,
            nav=navigation(sections) if nav else [],
            sections=list(sections),
            footer=footer,
            stylesheet=STYLESHEET,
        )
    )


def write_page(path: str | Path, **page: Any) -> Path:
    """Write :func:`render_page` ``(**page)`` to ``path`` and the stylesheet beside it; returns ``path``."""
    path = Path(path)
    atomic_write(path.parent / STYLESHEET, _package_file(STYLESHEET).encode("utf-8"))
    atomic_write(path, render_page(**page).encode("utf-8"))
    return path
