"""What a report section is: a function of the report's context (its computed analysis, the output folder and
the options) that returns one or more :class:`Section`.

A section is registered once, as a :class:`SectionEntry` in :data:`conv3t.explain.report.registry.SECTIONS`;
the page's order, its navigation and the progress bar's total all come from that list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from markupsafe import Markup

if TYPE_CHECKING:  # the context module imports this one; annotations only
    from conv3t.explain.report.context import ReportContext

__all__ = ["Figure", "Need", "Section", "SectionEntry", "SectionResult", "no_steps", "one_step"]


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


SectionResult = Section | Sequence[Section] | None


def one_step(ctx: ReportContext) -> int:
    """The default work estimate: one step of the progress bar."""
    return 1


def no_steps(ctx: ReportContext) -> int:
    """For sections that only format text: no progress step."""
    return 0


class Need(Enum):
    """The slow parts of the analysis a section shows; the report computes them only when an entry needs them."""

    VERIFICATION = "the verification against motion stimuli (the measured readings, the ranking by them)"
    PREDICTIONS = "each clip's explained prediction and its faithfulness checks"


@dataclass(frozen=True)
class SectionEntry:
    """A registered section.

    Attributes:
        name: a short unique name (for ``build_report(sections=...)`` and error messages).
        render: ``render(ctx) -> Section | list[Section] | None``; None leaves the section out (e.g. a 3D
            model has no verification). It advances the progress bar with ``with ctx.step(what): ...`` exactly
            ``steps(ctx)`` times.
        steps: how many progress steps ``render`` takes for this context (default 1; 0 for a section that
            only formats text).
        needs: the slow parts of the analysis it shows (:class:`Need`); the analysis computes them only when
            an entry of the report needs them.
    """

    name: str
    render: Callable[[ReportContext], SectionResult]
    steps: Callable[[ReportContext], int] = one_step
    needs: frozenset[Need] = frozenset()
