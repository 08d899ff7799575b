"""Sections "Why <clip> is <class>": one per explained clip.

For each clip (the ``--video`` files, or validation clips of the run's own data): the most probable classes,
the channels that contributed most to the top class (:class:`conv3t.explain.methods.attribution.ChannelAttribution`)
each with its measured motion reading, a sentence that says which measured motions carried the prediction, a
per-frame Grad-CAM overlay and the frames' importance (:mod:`conv3t.explain.methods.attribution`), and the verdicts of
the faithfulness checks of that explanation (:mod:`conv3t.explain.report.sections.faithfulness`, unless
``--no-faithfulness``), all computed by the report's analysis (:mod:`conv3t.explain.report.analysis`).
The same content is in ``predictions.json`` (docs/conventions.md; :mod:`conv3t.explain.report.artifacts`),
each entry with its ``faithfulness`` object.
"""

from __future__ import annotations

import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure as MplFigure

from conv3t.explain.faithfulness import FaithfulnessResult
from conv3t.explain.measured import prediction_sentence
from conv3t.explain.methods.frame_attribution import FRAME_ATTRIBUTIONS
from conv3t.explain.methods.saliency import overlay
from conv3t.explain.plots import save_figure
from conv3t.explain.report.analysis import PredictionExplanation
from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.images import pixels, save_png, tile, to_uint8
from conv3t.explain.report.render.page import macros, slug
from conv3t.explain.report.render.section import Figure, Section
from conv3t.explain.report.render.sections.faithfulness import verdict_items, verdict_line

__all__ = ["prediction_sections"]


def prediction_sections(ctx: ReportContext) -> list[Section]:
    """One section per explained clip of the analysis (none without clips)."""
    records = list(ctx.analysis.predictions or ())
    checks = None if ctx.analysis.faithfulness is None else list(ctx.analysis.faithfulness)
    measured = ctx.analysis.readings is not None
    return [
        _section(ctx, i, record, measured, None if checks is None else checks[i]) for i, record in enumerate(records)
    ]


def _section(
    ctx: ReportContext, index: int, record: PredictionExplanation, measured: bool, check: FaithfulnessResult | None
) -> Section:
    m = macros()
    top = record.top[0]
    truth = f" (label: {record.label})" if record.label else ""
    sentence = prediction_sentence(record.to_json())
    if not measured:
        sentence += " The channels' motion preferences were not measured (a 3D model, or --no-verify)."
    classes = m.table(("class", "probability"), [(t["class"], f"{t['probability']:.1%}") for t in record.top])
    channels = m.table(
        ("layer", "channel", "attribution (logit units)", "measured reading"),
        [
            (c["layer"], c["channel"], f"{c['attribution']:.3g}", c["reading"] or "not measured")
            for c in record.channels
        ],
    )
    html = Markup('<p class="sentence">{}</p>').format(sentence)
    if check is not None:
        html += verdict_line(check)
    html += (
        Markup("<p>Most probable classes{}:</p>").format(truth)
        + classes
        + Markup(
            "<p>Channels that pushed most towards {} (gradient × activation, summed over time and space):</p>"
        ).format(top["class"])
        + channels
    )
    if check is not None:
        html += Markup("<p>Is this explanation faithful to the model? Every check (section Faithfulness):</p>")
        html += verdict_items(check)
    figures = _figures(ctx, index, record)
    return Section(
        f"prediction_{index}",
        f"Why {record.video} is {top['class']}",
        html,
        figures,
        nav=f"clip {index}: {top['class']}",
    )


def _figures(ctx: ReportContext, index: int, record: PredictionExplanation) -> list[Figure]:
    clip = ctx.clips[index].clip
    frames = pixels(clip, ctx.info)  # (3, T, H, W)
    figures = []
    if record.cam is not None:
        originals = [to_uint8(frames[:, t]) for t in range(frames.shape[1])]
        overlays = [overlay(frames[:, t], record.cam[t]) for t in range(frames.shape[1])]
        path = ctx.images / f"gradcam_{index}_{slug(record.video)}.png"
        save_png(tile([originals, overlays]), path, min_side=96)
        caption = f"Grad-CAM of {record.cam_layer} per frame for {record.top[0]['class']} (top: frames)"
        figures.append(Figure(ctx.rel(path), caption, "wide"))
    path = ctx.images / f"frame_importance_{index}_{slug(record.video)}.png"
    save_figure(_importance_plot(record), path, dpi=80)
    if record.frame_comparison is None:
        caption = "which frames mattered: share of |input × gradient| per frame"
    else:
        caption = (
            f"which frames mattered: {FRAME_ATTRIBUTIONS.get(record.frame_method, record.frame_method)} (bars); "
            "the old |input × gradient| share for comparison (line, right axis; it fails its checks, RESULTS.md)"
        )
    figures.append(Figure(ctx.rel(path), caption, "plot"))
    return figures


def _importance_plot(record: PredictionExplanation) -> MplFigure:
    importance = record.frame_importance
    fig = MplFigure(figsize=(4.2, 2.2), layout="constrained")
    ax = fig.subplots()
    frames = np.arange(len(importance))
    ax.set_xticks(frames)
    ax.set_xlabel("input frame")
    if record.frame_comparison is None:
        ax.bar(frames, importance, color="tab:blue")
        ax.axhline(1.0 / max(len(importance), 1), color="0.5", lw=0.8, ls="--", label="uniform")
        ax.set_ylabel("share of importance")
        ax.legend(loc="best", fontsize="small")
        return fig
    ax.bar(frames, importance, color=["tab:blue" if v >= 0 else "tab:red" for v in importance])
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_ylabel("logit vs mean frame")
    old = ax.twinx()
    old.plot(frames, record.frame_comparison, color="0.3", marker=".", lw=0.8, label="|input × gradient| (old)")
    old.set_ylabel("share (old)", fontsize="small")
    old.legend(loc="best", fontsize="small")
    return fig
