"""The HTML pages: the explanation report (a list of sections), the comparison and the verification page.

* :func:`build_report` -- ``conv3t explain``: the sections of :data:`~conv3t.explain.report.registry.SECTIONS`;
* :func:`build_comparison` -- ``conv3t compare``;
* :func:`verification_page` -- ``conv3t verify --out``.

All three are rendered from one Jinja2 template with one stylesheet (:mod:`conv3t.explain.report.page`).
A section is a function ``section(ctx: ReportContext) -> Section | list[Section] | None`` of the computed
analysis (:mod:`conv3t.explain.report.analysis`) plus one
:class:`SectionEntry` in the registry; docs/extending.md shows a worked example.
"""

from conv3t.data.clips import load_video_clip
from conv3t.explain.report.build import build_report, report_context, sections_of
from conv3t.explain.report.compare import build_comparison
from conv3t.explain.report.context import Card, ReportClip, ReportContext, ReportOptions
from conv3t.explain.report.layers import select_layers
from conv3t.explain.report.registry import SECTIONS
from conv3t.explain.report.section import Figure, Section, SectionEntry
from conv3t.explain.report.sections.verification import verification_page, verification_section

__all__ = [
    "SECTIONS",
    "Card",
    "Figure",
    "ReportClip",
    "ReportContext",
    "ReportOptions",
    "Section",
    "SectionEntry",
    "build_comparison",
    "build_report",
    "load_video_clip",
    "report_context",
    "sections_of",
    "select_layers",
    "verification_page",
    "verification_section",
]
