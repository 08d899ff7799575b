"""The pictures and notes of one channel card, drawn from the analysis' :class:`ChannelViews`: parameter plot,
filter slices (first layer), activation maximisation and gradient saliency. Nothing is computed here but
pixels."""

from __future__ import annotations

from conv3t.explain.methods.filters import gif_frames, strip_image
from conv3t.explain.methods.saliency import overlay
from conv3t.explain.plots import plot_channel, save_figure, save_gif
from conv3t.explain.report.analysis import ChannelViews
from conv3t.explain.report.render.context import Card, ReportContext
from conv3t.explain.report.render.images import pixels, save_png, tile, to_uint8
from conv3t.explain.report.render.page import slug
from conv3t.explain.report.render.section import Figure

__all__ = ["card_figures"]


def card_figures(ctx: ReportContext, card: Card, views: ChannelViews | None) -> Card:
    """``card`` with its figures and notes: activation maximisation first (its note too), then the parameter
    plot, the filter, and the saliency maps (and a note when the channel is silent)."""
    figures: list[Figure] = []
    notes: list[str] = []
    if views is not None and views.actmax is not None:
        figures.append(_actmax(ctx, card, views))
        notes.append(_actmax_note(views))
    figures += _parameter_figures(ctx, card, views)
    if views is not None and views.saliency is not None:
        figures += _saliency(ctx, card, views)
        if views.saliency.note:
            notes.append(views.saliency.note)
    return Card(card.layer, card.channel, card.score, card.sentence, tuple(figures), tuple(notes), card.readings)


def _parameter_figures(ctx: ReportContext, card: Card, views: ChannelViews | None) -> list[Figure]:
    """The parameter plot and trajectory (3T), and for a first layer on RGB the filter's slices and animation."""
    name = f"{slug(card.layer)}_{card.channel}"
    table = ctx.table
    figures = []
    if table is not None and ((table["layer"] == card.layer) & (table["channel"] == card.channel)).any():
        path = ctx.images / f"parameters_{name}.png"
        # image pixels for the layer that sees the image; kernel (= input-feature) pixels for the later ones,
        # as their cards' parameter sentences
        pixels_of = "image" if card.layer == table["layer"].iloc[0] else "kernel"
        save_figure(plot_channel(table, card.layer, card.channel, pixels=pixels_of), path, dpi=70)
        caption = "temporal parameters per slice and the trajectory (blue: start, red: end)"
        figures.append(Figure(ctx.rel(path), caption, "plot wide"))
    if views is not None and views.filter is not None:
        path = ctx.images / f"filter_{name}.png"
        strip_image(views.filter).save(path)
        figures.append(Figure(ctx.rel(path), "the filter's time slices (RGB), first to last"))
        gif = ctx.images / f"filter_{name}.gif"
        save_gif(gif_frames(views.filter), gif)
        figures.append(Figure(ctx.rel(gif), "the filter, animated over its slices"))
    return figures


def _actmax(ctx: ReportContext, card: Card, views: ChannelViews) -> Figure:
    """The optimised input: one image (repeated over time) or the video frame by frame."""
    assert views.actmax is not None
    video = views.actmax.pixels  # (3, T, H, W)
    path = ctx.images / f"actmax_{slug(card.layer)}_{card.channel}.png"
    if views.actmax.single_frame:
        save_png(to_uint8(video[:, 0]), path, min_side=128)
        return Figure(ctx.rel(path), "activation maximisation: one image, repeated over time", "actmax")
    save_png(tile([[to_uint8(video[:, t]) for t in range(video.shape[1])]]), path, min_side=64)
    return Figure(ctx.rel(path), "activation maximisation: the optimised video, frame by frame", "wide")


def _actmax_note(views: ChannelViews) -> str:
    am = views.actmax
    assert am is not None
    return (
        f"Activation maximisation: mean rectified activation {am.activation:.3g} for the "
        f"optimised input ({am.steps} steps) vs {am.baseline:.3g} for random pixels."
    )


def _saliency(ctx: ReportContext, card: Card, views: ChannelViews) -> list[Figure]:
    """Gradient saliency per frame on the clip that excites the channel most, and at its peak frame (3T)."""
    sal = views.saliency
    assert sal is not None
    clip = ctx.clips[sal.clip]
    frames = pixels(clip.clip, ctx.info)
    originals = [to_uint8(frames[:, t]) for t in range(frames.shape[1])]
    overlays = [overlay(frames[:, t], sal.heat[t]) for t in range(frames.shape[1])]
    name = f"{slug(card.layer)}_{card.channel}"
    path = ctx.images / f"saliency_seq_{name}.png"
    save_png(tile([originals, overlays]), path, min_side=96)
    caption = f"gradient saliency per frame ({clip.name}; top: frames, bottom: the gradient over them)"
    figures = [Figure(ctx.rel(path), caption, "wide")]
    if sal.peak_frame is not None and sal.peak_heat is not None:
        image = pixels(sal.peak_frame[:, None], ctx.info)[:, 0]
        pair = tile([[to_uint8(image), overlay(image, sal.peak_heat)]])
        path = ctx.images / f"saliency_peak_{name}.png"
        save_png(pair, path, min_side=128)
        caption = (
            f"frame {sal.frame_index} of {clip.name}, the highest activation (output step {sal.time_index}), "
            "and its gradient"
        )
        figures.append(Figure(ctx.rel(path), caption, "pair"))
    return figures
