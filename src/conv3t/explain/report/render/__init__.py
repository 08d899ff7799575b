"""The report's page, drawn from its analysis: pure functions of
:class:`~conv3t.explain.report.analysis.ReportAnalysis` (no autograd, no data files; images only).

* :mod:`~conv3t.explain.report.render.page`: the Jinja2 template, its macros and the stylesheet;
* :mod:`~conv3t.explain.report.render.section` / :mod:`~conv3t.explain.report.render.entry`: what a section is;
* :mod:`~conv3t.explain.report.render.context`: what a section reads (:class:`ReportContext`);
* :mod:`~conv3t.explain.report.render.sections`: one module per section;
  :mod:`~conv3t.explain.report.render.report`: the page of the report.
"""

from conv3t.explain.report.render.context import Card, ReportContext
from conv3t.explain.report.render.entry import Need, SectionEntry, SectionResult, no_steps, one_step
from conv3t.explain.report.render.report import render_report, run_summary, sections_of, stage_times
from conv3t.explain.report.render.section import Figure, Section

__all__ = [
    "Card",
    "Figure",
    "Need",
    "ReportContext",
    "Section",
    "SectionEntry",
    "SectionResult",
    "no_steps",
    "one_step",
    "render_report",
    "run_summary",
    "sections_of",
    "stage_times",
]
