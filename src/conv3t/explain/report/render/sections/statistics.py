"""Section "Temporal parameter statistics (Table 2)", with links to ``parameters.csv``, ``ranking.csv``,
``statistics.md`` and ``statistics.tex`` (written by :mod:`conv3t.explain.report.artifacts`)."""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.section import Section
from conv3t.readout import format_statistics, summary_statistics

__all__ = ["statistics_section"]

_NO_TABLE = (
    "<p>This is a 3D model: its kernels have no explicit temporal parameters, so there is no Table 2. "
    "Channels below are ranked by how much their kernel changes from one slice to the next.</p>"
)
_INTRO = (
    "<p>Mean μ and standard deviation σ over all Conv3T channels and steps of the deviation of each "
    "temporal parameter from the identity (raw units, ×10<sup>−3</sup>, as Table 2 of the paper): "
    "|s − 1|, |r| (radians), |t<sub>x</sub>|, |t<sub>y</sub>| (affine-grid units).</p>"
)
_FILES = (
    '<p class="files">Also as <a href="statistics.md">Markdown</a> and <a href="statistics.tex">LaTeX</a>; '
    'every parameter in <a href="parameters.csv">parameters.csv</a>, the channel ranking in '
    '<a href="ranking.csv">ranking.csv</a>.</p>'
)


def statistics_section(ctx: ReportContext) -> Section:
    """Table 2 for this model, and links to the parameter and ranking tables."""
    return Section("statistics", "Temporal parameter statistics (Table 2)", _tables(ctx), nav="Statistics")


def _tables(ctx: ReportContext) -> Markup:
    table = ctx.table
    if table is None:
        return Markup(_NO_TABLE)
    if not len(table):
        return Markup("<p>The model has no Conv3T layer with temporal depth &gt; 1.</p>")
    stats = summary_statistics({ctx.info.model: table})
    shown = format_statistics(stats).rename_axis(None)
    # pandas escapes the cell values (escape=True); its HTML is the table's markup
    return Markup(_INTRO) + Markup(shown.to_html(index=True, border=0, classes="table", escape=True)) + Markup(_FILES)
