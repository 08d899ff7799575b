"""The pictures and notes of one channel card: parameter plot, filter slices (first layer), activation
maximisation and gradient saliency. Each function adds :class:`~conv3t.explain.report.section.Figure` objects
and notes to the cards it is given."""

from __future__ import annotations

import torch
from torch import Tensor

from conv3t.explain.actmax import ActivationMaximization
from conv3t.explain.filters import filter_layer, filter_strip, save_filter_gif
from conv3t.explain.plots import plot_channel, save_figure
from conv3t.explain.report.context import Card, ReportClip, ReportContext
from conv3t.explain.report.images import pixels, save_png, tile, to_uint8
from conv3t.explain.report.page import slug
from conv3t.explain.report.section import Figure
from conv3t.explain.saliency import ChannelSaliency, overlay, saliency_map

__all__ = ["add_actmax", "add_parameter_figures", "add_saliency"]


def add_parameter_figures(ctx: ReportContext, card: Card) -> None:
    """The parameter plot and trajectory (3T), and for a first layer on RGB the filter's slices and animation."""
    name = f"{slug(card.layer)}_{card.channel}"
    table = ctx.table
    if table is not None and ((table["layer"] == card.layer) & (table["channel"] == card.channel)).any():
        path = ctx.images / f"parameters_{name}.png"
        # image pixels for the layer that sees the image; kernel (= input-feature) pixels for the later ones,
        # as their cards' parameter sentences
        pixels_of = "image" if card.layer == table["layer"].iloc[0] else "kernel"
        save_figure(plot_channel(table, card.layer, card.channel, pixels=pixels_of), path, dpi=70)
        caption = "temporal parameters per slice and the trajectory (blue: start, red: end)"
        card.figures.append(Figure(ctx.rel(path), caption, "plot wide"))
    first, module = filter_layer(ctx.model)
    if card.layer == first and getattr(module, "in_channels", 0) == 3:
        path = ctx.images / f"filter_{name}.png"
        filter_strip(ctx.model, card.channel, layer=first).save(path)
        card.figures.append(Figure(ctx.rel(path), "the filter's time slices (RGB), first to last"))
        gif = ctx.images / f"filter_{name}.gif"
        save_filter_gif(ctx.model, card.channel, gif, layer=first)
        card.figures.append(Figure(ctx.rel(gif), "the filter, animated over its slices"))


def add_actmax(ctx: ReportContext, layer: str, cards: list[Card]) -> None:
    """Activation maximisation of all ``cards`` of ``layer`` in one batch, on a clip capped by the options."""
    if not cards:
        return
    opts, info = ctx.options, ctx.info
    h, w = info.size
    factor = min(1.0, opts.actmax_size / max(h, w))
    size = (max(16, round(h * factor)), max(16, round(w * factor)))
    frames = min(info.num_frames, opts.actmax_frames)
    smallest = getattr(ctx.model, "min_clip_size", None)
    if callable(smallest):  # e.g. a GoogLeNet in the authors' style pools too often for the capped clip
        t, mh, mw = smallest()
        frames, size = max(frames, t), (max(size[0], mh), max(size[1], mw))
    am = ActivationMaximization(ctx.model, layer, num_frames=frames, size=size, mean=info.mean, std=info.std)
    channels = [c.channel for c in cards]
    result = am.optimize(channels, steps=opts.actmax_steps, seed=opts.seed)
    baseline = am.random_baseline(channels, n=4, seed=opts.seed).mean(0)
    for k, card in enumerate(cards):
        video = result.pixels[k]  # (3, T, H, W)
        path = ctx.images / f"actmax_{slug(layer)}_{card.channel}.png"
        if result.single_frame:
            save_png(to_uint8(video[:, 0]), path, min_side=128)
            caption = "activation maximisation: one image, repeated over time"
        else:
            save_png(tile([[to_uint8(video[:, t]) for t in range(video.shape[1])]]), path, min_side=64)
            caption = "activation maximisation: the optimised video, frame by frame"
        card.figures.append(Figure(ctx.rel(path), caption, "actmax" if result.single_frame else "wide"))
        card.notes.append(
            f"Activation maximisation: mean rectified activation {float(result.activation[k]):.3g} for the "
            f"optimised input ({opts.actmax_steps} steps) vs {float(baseline[k]):.3g} for random pixels."
        )


def add_saliency(ctx: ReportContext, card: Card, activations: dict[str, Tensor] | None = None) -> None:
    """Gradient saliency on the clip that excites the channel most: per frame, and at its peak frame (3T).

    ``activations``: layer -> ``(clips, C)`` mean activations, filled here and reused for the layer's other
    cards (the layer's activations computed once per rendering)."""
    if not ctx.clips:
        return
    sal = ChannelSaliency(ctx.model, card.layer)
    clip = _most_exciting(ctx, sal, card, {} if activations is None else activations)
    grad = sal.attribute(clip.clip[None], card.channel)[0]  # (3, T, H, W)
    rectify = bool(grad.abs().max() > 0)
    if not rectify:  # silent everywhere: max(A, 0) has no gradient; show the raw activation's instead
        grad = sal.attribute(clip.clip[None], card.channel, rectify=False)[0]
        card.notes.append(_silent_note(bool(grad.abs().max() > 0), clip))
    heat = saliency_map(grad)  # (T, H, W), one scale for the whole clip
    frames = pixels(clip.clip, ctx.info)
    originals = [to_uint8(frames[:, t]) for t in range(frames.shape[1])]
    overlays = [overlay(frames[:, t], heat[t]) for t in range(frames.shape[1])]
    name = f"{slug(card.layer)}_{card.channel}"
    path = ctx.images / f"saliency_seq_{name}.png"
    save_png(tile([originals, overlays]), path, min_side=96)
    caption = f"gradient saliency per frame ({clip.name}; top: frames, bottom: the gradient over them)"
    card.figures.append(Figure(ctx.rel(path), caption, "wide"))
    if ctx.is_3t:
        peak = sal.peak_frame(clip.clip, card.channel, rectify=rectify)
        image = pixels(peak.frame[:, None], ctx.info)[:, 0]
        pair = tile([[to_uint8(image), overlay(image, saliency_map(peak.gradient[:, None])[0])]])
        path = ctx.images / f"saliency_peak_{name}.png"
        save_png(pair, path, min_side=128)
        caption = (
            f"frame {peak.frame_index} of {clip.name}, the highest activation (output step {peak.time_index}), "
            "and its gradient"
        )
        card.figures.append(Figure(ctx.rel(path), caption, "pair"))


def _most_exciting(ctx: ReportContext, sal: ChannelSaliency, card: Card, cache: dict[str, Tensor]) -> ReportClip:
    """The clip with the channel's largest mean activation (``cache``: the layer's, computed once)."""
    if card.layer not in cache:
        out = sal.activation(torch.stack([c.clip for c in ctx.clips]))
        cache[card.layer] = out.flatten(2).mean(2)
    return ctx.clips[int(cache[card.layer][:, card.channel].argmax())]


def _silent_note(raw_gradient: bool, clip: ReportClip) -> str:
    if raw_gradient:
        return (
            f"Saliency: the channel does not fire anywhere in the clips (largest mean activation in {clip.name}); "
            "the maps show the gradient of its raw activation A instead of max(A, 0)."
        )
    return (
        "Saliency: the channel's output does not depend on the input here (zero gradient): the kernel taps that "
        "reach this layer's small input are zero, so its temporal parameters have no effect at this clip size."
    )
