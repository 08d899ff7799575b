"""Sections "Layer ...": one per explained layer, a card per chosen channel with its sentence, the parameter
plot, the filter (first layer), activation maximisation and saliency."""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.report.cards import add_actmax, add_parameter_figures, add_saliency
from conv3t.explain.report.context import ReportContext
from conv3t.explain.report.page import macros, slug
from conv3t.explain.report.section import Section
from conv3t.explain.report.sections.readings import LAYER_NOTES_KEY

__all__ = ["channel_sections", "channel_steps"]

_NO_CARDS = (
    "No channel of this layer is shown: none has a temporal effect at this clip length (too few input frames reach "
    "its kernels' slices), or every one is dead."
)


def channel_steps(ctx: ReportContext) -> int:
    """One step of activation maximisation per layer, two per card (figures, saliency)."""
    return len(ctx.layers) + 2 * len(ctx.cards)


def channel_sections(ctx: ReportContext) -> list[Section]:
    """A section per layer in ``ctx.layers`` with the cards of ``ctx.cards``; the navigation shows the name."""
    _add_sentences(ctx)
    for name in ctx.layers:
        with ctx.step(f"activation maximisation: {name}"):
            add_actmax(ctx, name, ctx.cards_of(name))
    for card in ctx.cards:
        with ctx.step(f"parameters and filters: {card.layer} #{card.channel}"):
            add_parameter_figures(ctx, card)
        with ctx.step(f"saliency: {card.layer} #{card.channel}"):
            add_saliency(ctx, card)
    sections = []
    card_html = macros().card
    notes = ctx.shared.get(LAYER_NOTES_KEY, {})
    for name in ctx.layers:
        note = notes.get(name) or (None if ctx.cards_of(name) else _NO_CARDS)
        html = Markup('<p class="note">{}</p>').format(note) if note else Markup()
        for card in ctx.cards_of(name):
            # small pictures side by side first, then the full-width plots and strips
            ordered = sorted(card.figures, key=lambda f: "wide" in f.css.split())
            html += card_html(card, ordered)
        sections.append(Section(slug(name), f"Layer {name}", html, nav=name))
    return sections


def _add_sentences(ctx: ReportContext) -> None:
    """Each card's ranking score and sentence (3T models; :func:`conv3t.explain.rank_channels`)."""
    ranking = ctx.ranking
    if ranking is None:
        return
    for card in ctx.cards:
        row = ranking[(ranking["layer"] == card.layer) & (ranking["channel"] == card.channel)]
        if len(row):
            card.score = float(row["score"].iloc[0])
            card.sentence = str(row["sentence"].iloc[0])
            if "measured_sentence" in row.columns:  # measured readings (sections/readings.py)
                r = row.iloc[0]
                card.sentence = str(r["measured_sentence"])  # the headline: what it measurably prefers
                space = "in the image" if card.layer == ctx.ranking["layer"].iloc[0] else "in its input features"
                card.readings = [
                    (f"Parameters ({space})", str(r["parameter_sentence"])),
                    ("Agreement", str(r["agreement_sentence"])),
                ]
