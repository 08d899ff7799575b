"""What a report section is: a function of the report's context (its computed analysis and the output folder)
that returns one or more :class:`~conv3t.explain.report.render.section.Section`.

A section is registered once, as a :class:`SectionEntry` in :data:`conv3t.explain.report.registry.SECTIONS`;
the page's order, its navigation and the progress bar's total all come from that list, and so do the slow parts
the analysis computes (an entry's ``needs``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conv3t.explain.report.analysis import Need
from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.section import Section

__all__ = ["Need", "SectionEntry", "SectionResult", "no_steps", "one_step"]


SectionResult = Section | Sequence[Section] | None


def one_step(ctx: ReportContext) -> int:
    """The default work estimate: one step of the progress bar."""
    return 1


def no_steps(ctx: ReportContext) -> int:
    """For sections that only format text: no progress step."""
    return 0


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
