"""What a page is made of: :class:`Section` (one ``<section>``) and :class:`Figure` (an image it shows).

A report section is a function of the report's context returning one or more :class:`Section`, registered as a
:class:`~conv3t.explain.report.render.entry.SectionEntry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

__all__ = ["Figure", "Section"]


@dataclass(frozen=True)
class Figure:
    """An image the page shows: ``src`` relative to the report folder, a caption, CSS classes of its figure.

    CSS classes of the shipped stylesheet: ``wide`` (a row of its own), ``plot`` (a matplotlib figure, smooth
    scaling), ``plot wide`` (a full-width plot); none: a small picture shown beside others, scaled pixelated.
    """

    src: str
    caption: str
    css: str = ""
    alt: str | None = None  # the image's alt text; default: the caption


@dataclass
class Section:
    """One ``<section>`` of a page.

    Attributes:
        id: the element id and navigation anchor (None: no id, not in the navigation).
        title: the ``<h2>`` heading (plain text; escaped).
        html: the body as HTML (``markupsafe.Markup``; build it with :func:`markupsafe.escape` for any text
            that is not markup). Shown before ``figures``.
        figures: images shown after ``html``, in order.
        nav: the navigation label (default: ``title``).
        in_nav: list the section in the page's navigation (only sections with an ``id`` are listed).
        wrap: False writes ``html`` as it is, without ``<section>`` and heading (for fragments that bring
            their own, such as ``build_report(extra_sections=...)``).
    """

    id: str | None
    title: str
    html: Markup = field(default_factory=Markup)
    figures: list[Figure] = field(default_factory=list)
    nav: str | None = None
    in_nav: bool = True
    wrap: bool = True

    @property
    def nav_label(self) -> str:
        return self.nav if self.nav is not None else self.title
