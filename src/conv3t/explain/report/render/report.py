"""The report's page from its analysis: the sections of the registry in order, the run summary under the
heading and the footer, written to ``index.html`` with its stylesheet; images go to ``images/``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from markupsafe import Markup

from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.entry import SectionEntry
from conv3t.explain.report.render.page import write_page
from conv3t.explain.report.render.section import Section

__all__ = ["render_report", "run_summary", "sections_of", "stage_times"]


def render_report(ctx: ReportContext, entries: Sequence[SectionEntry], extra_sections: Sequence[str] = ()) -> Path:
    """Render ``entries`` (and the trusted HTML fragments ``extra_sections`` after them) into
    ``ctx.out / "index.html"``; one progress step per section step and one for writing the page."""
    ctx.images.mkdir(parents=True, exist_ok=True)
    rendered = sections_of(ctx, entries)
    rendered += [Section(None, "", Markup(html), wrap=False) for html in extra_sections]
    rendered.insert(0, run_summary(ctx))
    with ctx.step("writing index.html"):
        footer = Markup(
            "Written by <code>conv3t explain</code> in {:.0f} s. "
            "Static page: no scripts, nothing loaded from the network."
        ).format(time.perf_counter() - ctx.started)
        return write_page(
            ctx.out / "index.html",
            title=f"{ctx.info.model} — conv3t explanation report",
            heading=f"{ctx.info.model}: what its temporal filters learned",
            sections=rendered,
            footer=footer,
        )


def run_summary(ctx: ReportContext) -> Section:
    """The paragraph under the page's heading: device, precision, batch sizes and what each stage took (the
    stages done so far; the page itself is written after)."""
    stages = ", ".join(stage_times(ctx.progress.seconds))
    notes = Markup("").join(Markup("; {}").format(note) for note in ctx.run_notes)
    html = Markup('<p class="files">Computed on <code>{}</code> in float32{}. Time per stage: {}.</p>').format(
        str(ctx.device), notes, stages or "–"
    )
    return Section(None, "", html, wrap=False)


def stage_times(seconds: dict[str, float]) -> list[str]:
    """``"what 12 s"`` per stage, in order; the steps of one stage (``"saliency: conv1 #6"``, ``"saliency: conv1
    #39"``, ...) summed under its name (``"saliency 3 s in 6 parts"``): one entry per channel made the line of a
    paper-size report a paragraph of mostly "0 s"."""
    totals: dict[str, list[float]] = {}
    for what, s in seconds.items():
        totals.setdefault(what.split(":")[0], []).append(s)
    return [
        f"{what} {sum(parts):.0f} s" + (f" in {len(parts)} parts" if len(parts) > 1 else "")
        for what, parts in totals.items()
    ]


def sections_of(ctx: ReportContext, entries: Sequence[SectionEntry]) -> list[Section]:
    """Render ``entries`` in order; a section may return one Section, several, or None (left out).

    Raises RuntimeError when a section advances the progress bar more or less often than its ``steps`` say
    (the bar's total is their sum).
    """
    rendered: list[Section] = []
    for entry in entries:
        expected, before = entry.steps(ctx), ctx.progress.done
        result = entry.render(ctx)
        if ctx.progress.done - before != expected:
            raise RuntimeError(
                f"section {entry.name!r} took {ctx.progress.done - before} progress steps but declares {expected}"
            )
        if result is None:
            continue
        if isinstance(result, Section):
            rendered.append(result)
        elif all(isinstance(s, Section) for s in result):
            rendered.extend(result)
        else:
            raise TypeError(f"section {entry.name!r} returned {type(result).__name__}, not Section(s) or None")
    return rendered
