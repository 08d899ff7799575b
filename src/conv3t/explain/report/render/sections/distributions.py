"""Section "Distributions (Fig. 4)": every (channel, step) value of the model, in human and raw units."""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.plots import plot_distributions, save_figure
from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.section import Figure, Section

__all__ = ["distributions_section"]

_UNITS = (
    ("human", "human units: zoom as log₂ size factor per step, degrees clockwise, content motion in kernel px"),
    ("raw", "the paper's axes: s, −r (radians, clockwise positive), t_x, t_y"),
)


def distributions_section(ctx: ReportContext) -> Section:
    """Fig. 4 for this model: zoom, rotation and the joint translation per step."""
    title = "Distributions (Fig. 4)"
    with ctx.step("distributions"):
        if ctx.table is None or not len(ctx.table):
            text = "<p>No temporal parameters to plot (a 3D model, or no Conv3T layer with depth &gt; 1).</p>"
            return Section("distributions", title, Markup(text), nav="Distributions")
        figures = []
        for units, caption in _UNITS:
            path = ctx.images / f"distributions_{units}.png"
            save_figure(plot_distributions(ctx.table, units=units, title=ctx.info.model), path, dpi=80)
            figures.append(Figure(ctx.rel(path), caption, "plot wide"))
    intro = "<p>All (channel, step) values of the model, per step: zoom, rotation and the joint translation.</p>"
    return Section("distributions", title, Markup(intro), figures, nav="Distributions")
