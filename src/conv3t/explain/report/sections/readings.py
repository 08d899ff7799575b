"""Measured readings: no section of its own, but the measurement every later section reads.

Runs the verification once (:func:`~conv3t.explain.report.sections.verification.measured_verification`),
condenses it into per-channel readings (:func:`conv3t.verify.readings.channel_readings`) and per-layer verdicts
(:func:`conv3t.verify.readings.layer_verdicts`), kept in ``ctx.shared["readings"]`` / ``["verdicts"]``, then
re-ranks the channels with them (:func:`conv3t.explain.rank_channels`: strongly tuned first; ``ranking.csv``
gains the reading columns) and re-chooses each layer's cards from that ranking, leaving out dead channels and
channels with no temporal effect at the clip length. Channels given explicitly (``build_report(channels=...)``)
are kept. Registered before the statistics section, which writes ``ranking.csv``.
"""

from __future__ import annotations

import pandas as pd

from conv3t.explain.describe import rank_channels
from conv3t.explain.report.context import Card, ReportContext
from conv3t.explain.report.sections.verification import measured_verification, verification_steps
from conv3t.verify.readings import channel_readings, layer_verdicts

__all__ = ["LAYER_NOTES_KEY", "measure_readings", "readings_steps"]

LAYER_NOTES_KEY = "layer_notes"  # ctx.shared: layer -> why it shows no channel


def readings_steps(ctx: ReportContext) -> int:
    return verification_steps(ctx)


def measure_readings(ctx: ReportContext) -> None:
    """Measure, re-rank and re-choose the cards (3T models with ``verify``); renders nothing."""
    if not readings_steps(ctx) or ctx.table is None or not len(ctx.table):
        return None
    with ctx.step("verification against motion stimuli"):
        result = measured_verification(ctx)
    readings = channel_readings(result, "image")
    verdicts = layer_verdicts(result)
    ctx.shared["readings"] = readings
    ctx.shared["verdicts"] = verdicts
    image = verdicts[verdicts["mode"] == "image"]
    # False only for a layer whose parameters were shown not to read as image motion; unknown (too few tuned
    # channels) or partly readable layers get no general warning on their cards
    verdict = {"readable": True, "not readable": False}
    readable = {str(r["layer"]): verdict[r["verdict"]] for _, r in image.iterrows() if r["verdict"] in verdict}
    ctx.ranking = rank_channels(ctx.table, per_layer=True, readings=readings, readable=readable)
    if ctx.shared.get("channels") is None:
        ctx.cards = _choose(ctx, ctx.ranking)
    return None


def _choose(ctx: ReportContext, ranking: pd.DataFrame) -> list[Card]:
    """The ``num_channels`` top-ranked live channels with a temporal effect, per layer (others keep their
    cards, e.g. Conv3d layers)."""
    notes: dict[str, str] = ctx.shared.setdefault(LAYER_NOTES_KEY, {})
    cards: list[Card] = []
    for layer in ctx.layers:
        rows = ranking[ranking["layer"] == layer]
        if rows.empty:
            cards += ctx.cards_of(layer)
            continue
        live = rows[~rows["dead"].astype(bool) & (rows["steps_in_clip"] > 0)]
        if live.empty:
            notes[layer] = (
                "No channel of this layer is shown: none has a temporal effect at this clip length (too few "
                "input frames reach its kernels' slices), or every one is dead."
            )
        cards += [Card(layer, int(c)) for c in live["channel"].head(ctx.options.num_channels)]
    return cards
