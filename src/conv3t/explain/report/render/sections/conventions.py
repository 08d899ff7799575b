"""Section "Reading the channels": the conventions behind the channel cards' numbers and pictures."""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.section import Section

__all__ = ["CONVENTIONS", "conventions_section"]

CONVENTIONS = (
    "Each card's headline is measured: the image motion the channel responds to most when the network's input "
    "shows textures of known motion (direction 0° = right, 90° = down, speed in image pixels per frame, "
    "rotation and zoom sense, tuning strength 0..1). Below it, what its temporal parameters say: the motion of "
    "the filter's content from one time slice to the next, x to the right, y down; rotation in degrees, "
    "positive = clockwise on screen; zoom in percent per step, positive = content grows (zooms in). For the "
    "first layer that is image motion; for later layers it is motion in their input features (kernel pixels per "
    "step), which the agreement line checks against the measurement. With measurements, channels are ranked by "
    "tuning strength (tuned ones first); without, by how far their content travels over the kernel's slices; "
    "dead channels and channels with no temporal effect at this clip length are not shown. docs/conventions.md "
    "defines every reading. Saliency is the gradient, with respect to the "
    "input pixels, of the channel's positive activation max(A, 0) summed over all positions (brighter = larger), "
    "shown for the clip that excites the channel most; activation maximisation shows an input optimised to "
    "excite the channel."
)


def conventions_section(ctx: ReportContext) -> Section:
    """Plain text, no work: not in the navigation."""
    return Section(None, "Reading the channels", Markup("<p>{}</p>").format(CONVENTIONS), in_nav=False)
