"""Section "Reading the channels": the conventions behind the channel cards' numbers and pictures."""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.report.context import ReportContext
from conv3t.explain.report.section import Section

__all__ = ["CONVENTIONS", "conventions_section"]

CONVENTIONS = (
    "Motion is that of the filter's content from one time slice to the next, which is the motion the channel "
    "prefers in the input: x to the right, y down, in input-image pixels; rotation in degrees, positive = "
    "clockwise on screen; zoom in percent per step, positive = content grows (zooms in). Channels are ranked "
    "by how far their content travels over the kernel's slices. Saliency is the gradient, with respect to the "
    "input pixels, of the channel's positive activation max(A, 0) summed over all positions (brighter = larger), "
    "shown for the clip that excites the channel most; activation maximisation shows an input optimised to "
    "excite the channel."
)


def conventions_section(ctx: ReportContext) -> Section:
    """Plain text, no work: not in the navigation."""
    return Section(None, "Reading the channels", Markup("<p>{}</p>").format(CONVENTIONS), in_nav=False)
