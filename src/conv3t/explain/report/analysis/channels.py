"""What the report shows of each chosen channel beyond its parameters, computed here so that rendering needs no
autograd: activation maximisation (all channels of a layer in one batch), gradient saliency on the clip that
excites the channel most (per frame, and at its peak frame for 3T models) and, for a first layer on RGB, the
filter's time slices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from conv3t.explain.methods.actmax import ActivationMaximization
from conv3t.explain.methods.filters import filter_layer, filter_slices
from conv3t.explain.methods.saliency import ChannelSaliency, saliency_map
from conv3t.explain.report.analysis.inputs import ReportClip
from conv3t.explain.report.options import ReportOptions
from conv3t.explain.report.progress import StepCounter
from conv3t.exported import ModelInfo

__all__ = ["ActMaxView", "ChannelViews", "SaliencyView", "channel_views"]


@dataclass(frozen=True)
class ActMaxView:
    """Activation maximisation of one channel: ``pixels`` ``(3, T, H, W)`` in [0, 1] (``single_frame``: one
    image repeated over time), the mean rectified ``activation`` it reaches and the ``baseline`` of random
    pixels, after ``steps`` Adam steps."""

    pixels: Tensor
    single_frame: bool
    activation: float
    baseline: float
    steps: int


@dataclass(frozen=True)
class SaliencyView:
    """Gradient saliency of one channel on the clip ``clip`` (an index into the analysis' clips).

    Attributes:
        heat: ``(T, H, W)`` in [0, 1], one scale for the whole clip.
        note: why the map is not the rectified activation's gradient (a silent channel), else None.
        peak_frame: the normalised input frame ``(3, H, W)`` at the channel's highest activation and
            ``peak_heat`` ``(H, W)`` its gradient's map; ``frame_index`` / ``time_index`` the input frame and the
            output step (3T models only; None otherwise).
    """

    clip: int
    heat: Tensor
    note: str | None = None
    peak_frame: Tensor | None = None
    peak_heat: Tensor | None = None
    frame_index: int | None = None
    time_index: int | None = None


@dataclass(frozen=True)
class ChannelViews:
    """The pictures of one shown channel: ``filter`` ``(D, kH, kW, 3)`` slices in [0, 1] (first layer on RGB,
    else None), ``actmax`` and ``saliency`` (None without clips)."""

    layer: str
    channel: int
    filter: np.ndarray | None
    actmax: ActMaxView | None
    saliency: SaliencyView | None


def channel_views(
    model: nn.Module,
    info: ModelInfo,
    shown: Sequence[tuple[str, int]],
    clips: Sequence[ReportClip],
    options: ReportOptions,
    is_3t: bool,
    progress: StepCounter,
) -> tuple[ChannelViews, ...]:
    """:class:`ChannelViews` of every ``(layer, channel)`` in ``shown``, in order; one progress step per layer
    (activation maximisation) and one per channel (saliency)."""
    layers = list(dict.fromkeys(layer for layer, _ in shown))
    actmax: dict[tuple[str, int], ActMaxView] = {}
    for layer in layers:
        with progress.step(f"activation maximisation: {layer}"):
            channels = [c for name, c in shown if name == layer]
            actmax.update(((layer, c), v) for c, v in zip(channels, _actmax(model, info, layer, channels, options)))
    first, module = filter_layer(model)
    rgb = getattr(module, "in_channels", 0) == 3
    activations: dict[str, Tensor] = {}  # layer -> (clips, C) mean activation, for the clip choice
    views = []
    for layer, channel in shown:
        with progress.step(f"saliency: {layer} #{channel}"):
            saliency = _saliency(model, layer, channel, clips, is_3t, activations) if clips else None
        slices = filter_slices(model, [channel], first)[0] if layer == first and rgb else None
        views.append(ChannelViews(layer, channel, slices, actmax[layer, channel], saliency))
    return tuple(views)


def _actmax(
    model: nn.Module, info: ModelInfo, layer: str, channels: list[int], options: ReportOptions
) -> list[ActMaxView]:
    """Activation maximisation of ``channels`` of ``layer`` in one batch, on a clip capped by the options."""
    h, w = info.size
    factor = min(1.0, options.actmax_size / max(h, w))
    size = (max(16, round(h * factor)), max(16, round(w * factor)))
    frames = min(info.num_frames, options.actmax_frames)
    smallest = getattr(model, "min_clip_size", None)
    if callable(smallest):  # e.g. a GoogLeNet in the authors' style pools too often for the capped clip
        t, mh, mw = smallest()
        frames, size = max(frames, t), (max(size[0], mh), max(size[1], mw))
    am = ActivationMaximization(model, layer, num_frames=frames, size=size, mean=info.mean, std=info.std)
    result = am.optimize(channels, steps=options.actmax_steps, seed=options.seed)
    baseline = am.random_baseline(channels, n=4, seed=options.seed).mean(0)
    return [
        ActMaxView(
            result.pixels[k], result.single_frame, float(result.activation[k]), float(baseline[k]), options.actmax_steps
        )
        for k in range(len(channels))
    ]


def _saliency(
    model: nn.Module,
    layer: str,
    channel: int,
    clips: Sequence[ReportClip],
    is_3t: bool,
    activations: dict[str, Tensor],
) -> SaliencyView:
    """Gradient saliency on the clip that excites the channel most (``activations``: the layer's, computed once)."""
    sal = ChannelSaliency(model, layer)
    if layer not in activations:
        activations[layer] = sal.activation(torch.stack([c.clip for c in clips])).flatten(2).mean(2)
    index = int(activations[layer][:, channel].argmax())
    clip = clips[index]
    grad = sal.attribute(clip.clip[None], channel)[0]  # (3, T, H, W)
    rectify = bool(grad.abs().max() > 0)
    note = None
    if not rectify:  # silent everywhere: max(A, 0) has no gradient; show the raw activation's instead
        grad = sal.attribute(clip.clip[None], channel, rectify=False)[0]
        note = _silent_note(bool(grad.abs().max() > 0), clip)
    heat = saliency_map(grad)  # (T, H, W), one scale for the whole clip
    if not is_3t:
        return SaliencyView(index, heat, note)
    peak = sal.peak_frame(clip.clip, channel, rectify=rectify)
    peak_heat = saliency_map(peak.gradient[:, None])[0]
    return SaliencyView(index, heat, note, peak.frame, peak_heat, peak.frame_index, peak.time_index)


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
