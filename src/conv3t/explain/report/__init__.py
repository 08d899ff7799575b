"""The HTML pages: the explanation report (a list of sections), the comparison and the verification page.

* :func:`build_report` -- ``conv3t explain``: the sections of :data:`~conv3t.explain.report.registry.SECTIONS`;
* :func:`build_comparison` -- ``conv3t compare``;
* :func:`verification_page` -- ``conv3t verify --out``.

The report flows one way: :class:`ReportOptions` (:mod:`~conv3t.explain.report.options`) ->
:func:`~conv3t.explain.report.analysis.analyse` (one frozen :class:`ReportAnalysis`; writes nothing) ->
its data files (:mod:`~conv3t.explain.report.artifacts`) and its page (:mod:`~conv3t.explain.report.render`:
one Jinja2 template, one stylesheet; no autograd, no data files). A section is a function
``section(ctx: ReportContext) -> Section | list[Section] | None`` of the analysis plus one :class:`SectionEntry`
in the registry; docs/extending.md shows a worked example.

Every name below is imported when first asked for (PEP 562), so that ``conv3t explain`` reads its options
(:mod:`conv3t.explain.report.options`) at the command line's start without loading the report.
"""

from __future__ import annotations

from conv3t.lazy import lazy_exports

_WHERE = {
    "SECTIONS": "conv3t.explain.report.registry",
    "Card": "conv3t.explain.report.render",
    "Figure": "conv3t.explain.report.render",
    "OptionError": "conv3t.explain.report.options",
    "ReportAnalysis": "conv3t.explain.report.analysis",
    "ReportClip": "conv3t.explain.report.analysis",
    "ReportContext": "conv3t.explain.report.render",
    "ReportOptions": "conv3t.explain.report.options",
    "Section": "conv3t.explain.report.render",
    "SectionEntry": "conv3t.explain.report.render",
    "analyse": "conv3t.explain.report.analysis",
    "build_comparison": "conv3t.explain.report.compare",
    "build_report": "conv3t.explain.report.build",
    "load_video_clip": "conv3t.data.clips",
    "read_clips": "conv3t.explain.report.analysis",
    "report_analysis": "conv3t.explain.report.build",
    "sections_of": "conv3t.explain.report.render",
    "select_layers": "conv3t.explain.report.analysis",
    "verification_page": "conv3t.explain.report.render.sections.verification",
    "verification_section": "conv3t.explain.report.render.sections.verification",
    "write_artifacts": "conv3t.explain.report.artifacts",
}


#: every name is lazy, so the public list is the lazy map's
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
