"""Section "Model": what was loaded, and the input clips with the model's top prediction on each."""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.images import pixels, save_png, tile, to_uint8
from conv3t.explain.report.render.page import macros
from conv3t.explain.report.render.section import Figure, Section

__all__ = ["model_section"]


def model_section(ctx: ReportContext) -> Section:
    """The model summary table, then every frame of each input clip with its label and prediction."""
    info = ctx.info
    kind = "3TConv" if ctx.is_3t else "3DConv"
    more = " …" if info.num_classes > 12 else ""
    rows = [
        ("model", f"{info.model} ({kind})"),
        ("weights", "given as a model object" if ctx.source is None else str(ctx.source)),
        ("parameters", f"{ctx.analysis.parameter_count:,}"),
        ("temporal layers", str(len(ctx.analysis.temporal_layers))),
        ("classes", f"{info.num_classes}: {', '.join(info.classes[:12])}{more}"),
        ("clip", f"{info.num_frames} frames of {info.size[0]} × {info.size[1]} pixels"),
        ("data", ", ".join(f"{k}={v}" for k, v in info.data.items()) or "not recorded"),
    ]
    html = macros().kv_table(rows)
    if not ctx.clips:
        note = Markup('<p class="note">No input clips: {}. Pass <code>--video FILE</code> for saliency.</p>')
        return Section("model", "Model", html + note.format(ctx.clip_source))
    html += Markup("<p>Inputs: {}. Every frame of each clip, then the model's top prediction.</p>").format(
        ctx.clip_source
    )
    figures = []
    for i, c in enumerate(ctx.clips):
        frames = pixels(c.clip, info)
        path = ctx.images / f"clip{i}.png"
        save_png(tile([[to_uint8(frames[:, t]) for t in range(frames.shape[1])]]), path, min_side=48)
        truth = f" — label: {c.label}" if c.label else ""
        pred = f"; predicted {c.prediction} ({c.probability:.0%})" if c.prediction else ""
        figures.append(Figure(ctx.rel(path), f"{c.name}{truth}{pred}", "wide"))
    return Section("model", "Model", html, figures)
