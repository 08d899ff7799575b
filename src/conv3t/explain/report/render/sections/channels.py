"""Sections "Layer ...": one per explained layer, a card per chosen channel of the analysis with its sentence
and readings, the parameter plot, the filter (first layer), activation maximisation and saliency (all computed
by the analysis, :mod:`conv3t.explain.report.analysis.channels`)."""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.report.render.cards import card_figures
from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.page import macros, slug
from conv3t.explain.report.render.section import Section

__all__ = ["channel_sections", "channel_steps"]

_NO_CARDS = (
    "No channel of this layer is shown: none has a temporal effect at this clip length (too few input frames reach "
    "its kernels' slices), or every one is dead."
)


def channel_steps(ctx: ReportContext) -> int:
    """One step per card (its figures)."""
    return len(ctx.analysis.channels)


def channel_sections(ctx: ReportContext) -> list[Section]:
    """A section per layer of the analysis with a card per chosen channel; the navigation shows the name."""
    views = ctx.analysis.views
    cards = []
    for i, card in enumerate(ctx.cards):
        with ctx.step(f"figures: {card.layer} #{card.channel}"):
            cards.append(card_figures(ctx, card, None if views is None else views[i]))
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
