"""Sections "Layer ...": one per explained layer, a card per chosen channel of the analysis with its sentence
and readings, the parameter plot, the filter (first layer), activation maximisation and saliency."""

from __future__ import annotations

from markupsafe import Markup
from torch import Tensor

from conv3t.explain.report.cards import add_actmax, add_parameter_figures, add_saliency
from conv3t.explain.report.context import ReportContext
from conv3t.explain.report.page import macros, slug
from conv3t.explain.report.section import Section

__all__ = ["channel_sections", "channel_steps"]

_NO_CARDS = (
    "No channel of this layer is shown: none has a temporal effect at this clip length (too few input frames reach "
    "its kernels' slices), or every one is dead."
)


def channel_steps(ctx: ReportContext) -> int:
    """One step of activation maximisation per layer, two per card (figures, saliency)."""
    return len(ctx.analysis.layers) + 2 * len(ctx.analysis.channels)


def channel_sections(ctx: ReportContext) -> list[Section]:
    """A section per layer of the analysis with a card per chosen channel; the navigation shows the name."""
    cards = ctx.cards  # this rendering's own cards: the figures below are added to them
    activations: dict[str, Tensor] = {}  # layer -> (clips, C) mean activation, for saliency's clip choice
    for name in ctx.layers:
        with ctx.step(f"activation maximisation: {name}"):
            add_actmax(ctx, name, [c for c in cards if c.layer == name])
    for card in cards:
        with ctx.step(f"parameters and filters: {card.layer} #{card.channel}"):
            add_parameter_figures(ctx, card)
        with ctx.step(f"saliency: {card.layer} #{card.channel}"):
            add_saliency(ctx, card, activations)
    sections = []
    card_html = macros().card
    for name in ctx.layers:
        shown = [c for c in cards if c.layer == name]
        html = Markup() if shown else Markup('<p class="note">{}</p>').format(_NO_CARDS)
        for card in shown:
            # small pictures side by side first, then the full-width plots and strips
            ordered = sorted(card.figures, key=lambda f: "wide" in f.css.split())
            html += card_html(card, ordered)
        sections.append(Section(slug(name), f"Layer {name}", html, nav=name))
    return sections
