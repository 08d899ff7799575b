"""Why the model predicted what it did: per-channel attribution, per-frame Grad-CAM and frame importance.

Three views of one prediction, all through captum and all for the class score (the logit) of a target class:

* :class:`ChannelAttribution` -- how much each channel of the chosen layers contributed: captum's
  ``LayerGradientXActivation`` on the layer's output ``A`` ``(N, C, T', H', W')`` (for a Conv3T the convolution
  before BatchNorm, so channel numbers match :func:`conv3t.explain.temporal_parameters`), summed over
  ``(T', H', W')``: ``a_c = sum_{t,h,w} A_c * d logit / d A_c``, the first-order share of the logit carried by
  channel ``c`` (logit units; positive = pushes towards the class).
* :func:`grad_cam` -- where, frame by frame: captum's ``LayerGradCam`` on one layer, ``relu(sum_c w_c A_c)``
  with ``w_c`` the gradient averaged over ``(T', H', W')``, interpolated (trilinear) to the clip's
  ``(T, H, W)`` and scaled to [0, 1] per clip.
* :func:`frame_importance` -- when: captum's ``InputXGradient``, ``|x * d logit / d x|`` summed over colour and
  space per input frame, normalised to sum 1 per clip.

:func:`explain_predictions` combines them with the channels' measured motion readings
(:func:`conv3t.verify.readings.channel_readings`) into the records of ``predictions.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from conv3t.explain.saliency import frozen_parameters, model_device

__all__ = [
    "ChannelAttribution",
    "PredictionExplanation",
    "explain_predictions",
    "frame_importance",
    "grad_cam",
    "gradcam_layer",
    "logits_of",
]


def logits_of(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """A forward function returning ``(N, classes)`` logits (the first output of models with auxiliary heads)."""

    def forward(x: Tensor) -> Tensor:
        out = model(x)
        if isinstance(out, tuple | list):
            out = out[0]
        if not isinstance(out, Tensor) or out.ndim != 2:
            raise TypeError(f"expected (N, classes) logits from the model, got {type(out).__name__}")
        return out

    return forward


def _check_clips(clips: Tensor) -> None:
    if clips.ndim != 5:
        raise ValueError(f"clips must be (N, C, T, H, W), got shape {tuple(clips.shape)}")


def _targets(target: int | Sequence[int] | Tensor, n: int) -> Tensor:
    t = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target must be one class or one per clip ({n}), got {t.numel()}")
    return t.clone()


class ChannelAttribution:
    """Per-channel contribution of named layers to a class logit (gradient x activation, summed over positions).

    Args:
        model: the network, ``(N, C, T, H, W) -> (N, classes)`` (eval mode is the caller's choice).
        layers: qualified names of the layers to attribute to (e.g. every Conv3T).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        from captum.attr import LayerGradientXActivation

        if not layers:
            raise ValueError("layers is empty: name at least one layer to attribute to")
        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            raise ValueError(f"layers {missing} are not modules of {type(model).__name__}")
        self.model = model
        self.layers = list(layers)
        self._captum = LayerGradientXActivation(logits_of(model), [modules[n] for n in self.layers])

    def attribute(self, clips: Tensor, target: int | Sequence[int] | Tensor) -> dict[str, Tensor]:
        """``clips (N, C, T, H, W)`` -> layer name -> ``(N, channels)`` attributions (logit units)."""
        _check_clips(clips)
        x = clips.detach().to(model_device(self.model))
        with frozen_parameters(self.model):
            out = self._captum.attribute(x, target=_targets(target, clips.shape[0]).to(x.device))
        if isinstance(out, Tensor):
            out = [out]
        return {name: a.detach().flatten(2).sum(2).to(clips.device) for name, a in zip(self.layers, out)}


def gradcam_layer(model: nn.Module, layers: Sequence[str], clip_shape: Sequence[int], min_side: int = 7) -> str:
    """The layer for Grad-CAM: the deepest of ``layers`` whose output is at least ``min_side`` pixels on its
    shorter side and 2 steps long for a clip of ``clip_shape`` ``(C, T, H, W)`` (7 x 7 is a 224-pixel ResNet's
    last map, the classic Grad-CAM resolution); the first of ``layers`` when none is."""
    if not layers:
        raise ValueError("layers is empty")
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        modules[n].register_forward_hook(lambda _m, _i, o, _n=n: shapes.__setitem__(_n, tuple(o.shape))) for n in layers
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *clip_shape, device=model_device(model)))
    finally:
        for h in handles:
            h.remove()
    fit = [n for n in layers if n in shapes and min(shapes[n][-2:]) >= min_side and shapes[n][2] >= 2]
    return fit[-1] if fit else layers[0]


def grad_cam(model: nn.Module, layer: str, clips: Tensor, target: int | Sequence[int] | Tensor) -> Tensor:
    """Per-frame Grad-CAM of ``layer`` for ``clips (N, C, T, H, W)``: ``(N, T, H, W)`` in [0, 1] (module notes)."""
    from captum.attr import LayerAttribution, LayerGradCam

    _check_clips(clips)
    module = dict(model.named_modules())[layer]
    cam = LayerGradCam(logits_of(model), module)
    x = clips.detach().to(model_device(model))
    with frozen_parameters(model):
        heat = cam.attribute(x, target=_targets(target, clips.shape[0]).to(x.device), relu_attributions=True)
    heat = LayerAttribution.interpolate(heat.detach(), tuple(clips.shape[2:]), interpolate_mode="trilinear")
    heat = heat[:, 0].clamp_min(0)
    peak = heat.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (heat / peak).to(clips.device)


def frame_importance(model: nn.Module, clips: Tensor, target: int | Sequence[int] | Tensor) -> Tensor:
    """``(N, T)``: share of ``sum |x * d logit / d x|`` in each input frame (rows sum to 1; uniform if all 0)."""
    from captum.attr import InputXGradient

    _check_clips(clips)
    x = clips.detach().to(model_device(model), copy=True).requires_grad_(True)
    with frozen_parameters(model):
        attr = InputXGradient(logits_of(model)).attribute(x, target=_targets(target, clips.shape[0]).to(x.device))
    per_frame = attr.detach().abs().sum(dim=(1, 3, 4)).double().to(clips.device)  # (N, T)
    total = per_frame.sum(1, keepdim=True)
    uniform = torch.full_like(per_frame, 1.0 / per_frame.shape[1])
    return torch.where(total > 0, per_frame / total.clamp_min(1e-300), uniform).float()


@dataclass(frozen=True)
class PredictionExplanation:
    """One clip's explanation (the record of ``predictions.json`` plus what the page draws).

    Attributes:
        video: the clip's name.
        top: ``[{"class": str, "probability": float}, ...]``, most probable first.
        target: the logit index of the top class, the class explained (the report checks this index; a class
            name need not identify it).
        channels: ``[{"layer", "channel", "attribution", "reading"}, ...]``: the channels with the largest
            positive attribution to the top class, largest first; ``reading`` is the channel's measured motion
            reading in words ("" when not measured).
        frame_importance: ``T`` values, one per frame, by ``frame_method``: ``"input_x_gradient"`` shares summing
            to 1, or a signed attribution against the mean frame in logit units
            (:mod:`conv3t.explain.frame_attribution`).
        cam: ``(T, H, W)`` Grad-CAM in [0, 1] (not written to JSON); ``cam_layer`` its layer.
        label: the clip's true class when known.
        frame_comparison: the input x gradient shares, kept beside another ``frame_method`` as a labelled
            comparison (None when ``frame_method`` is input x gradient).
    """

    video: str
    top: list[dict[str, Any]]
    target: int
    channels: list[dict[str, Any]]
    frame_importance: list[float]
    cam: Tensor | None = None
    cam_layer: str = ""
    label: str | None = None
    frame_method: str = "input_x_gradient"
    frame_comparison: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``predictions.json`` record: ``video``, ``top``, ``target``, ``channels``, ``frame_importance``,
        ``frame_method`` and, beside another method, ``frame_importance_input_x_gradient``."""
        out = {
            "video": self.video,
            "top": self.top,
            "target": self.target,
            "channels": self.channels,
            "frame_importance": self.frame_importance,
            "frame_method": self.frame_method,
        }
        if self.frame_comparison is not None:
            out["frame_importance_input_x_gradient"] = self.frame_comparison
        return out


def explain_predictions(
    model: nn.Module,
    clips: Tensor,
    names: Sequence[str],
    classes: Sequence[str],
    layers: Sequence[str],
    readings: pd.DataFrame | None = None,
    reading_text: Callable[[pd.Series], str] | None = None,
    top_classes: int = 3,
    top_channels: int = 5,
    cam_layer: str | None = None,
    frame_attribution: tuple[str, Callable[[nn.Module, Tensor, Tensor], Tensor]] | None = None,
    labels: Sequence[str | None] | None = None,
) -> list[PredictionExplanation]:
    """Explain the model's top prediction on each clip.

    Args:
        model: the network (in eval mode).
        clips: ``(N, C, T, H, W)`` normalised model inputs; ``names``: one per clip.
        classes: class names, index = logit position.
        layers: layers whose channels are attributed to (e.g. every Conv3T layer with temporal depth > 1).
        readings: :func:`conv3t.verify.readings.channel_readings` rows (``layer``, ``channel`` plus readings),
            or None; ``reading_text`` turns one such row into words.
        top_classes, top_channels: how many classes and channels to keep; ``cam_layer``: the Grad-CAM layer
            (default :func:`gradcam_layer` of ``layers``).
        frame_attribution: ``(method, fn)`` with ``fn(model, clip (1, C, T, H, W), target (1,)) -> (1, T)``, the
            frame attribution shown (input x gradient is then kept as the comparison); default input x gradient.
        labels: each clip's true class when known (recorded, not used).
    Returns one :class:`PredictionExplanation` per clip.
    """
    _check_clips(clips)
    if len(names) != clips.shape[0]:
        raise ValueError(f"got {len(names)} names for {clips.shape[0]} clips")
    labels = [None] * len(names) if labels is None else list(labels)
    if len(labels) != len(names):
        raise ValueError(f"got {len(labels)} labels for {len(names)} clips")
    cam_layer = cam_layer or gradcam_layer(model, layers, tuple(clips.shape[1:]))
    lookup = {}
    if readings is not None and reading_text is not None:
        lookup = {(str(r["layer"]), int(r["channel"])): reading_text(r) for _, r in readings.iterrows()}
    attribution = ChannelAttribution(model, layers)
    method, frame_fn = frame_attribution or ("input_x_gradient", None)
    out = []
    # one clip at a time: the attributions hold every attributed layer's activations and gradients, so a
    # batch of clips would hold them for all clips at once
    for i, name in enumerate(names):
        clip = clips[i : i + 1]
        with torch.no_grad():
            probs = torch.softmax(logits_of(model)(clip.to(model_device(model))).float(), dim=1).cpu()[0]
        target = probs.argmax()[None]
        channel_attr = attribution.attribute(clip, target)
        k = min(top_classes, probs.shape[0])
        p, idx = probs.topk(k)
        top = [{"class": _name(classes, int(j)), "probability": float(q)} for q, j in zip(p, idx)]
        ranked = sorted(
            ((float(a[0, c]), layer, c) for layer, a in channel_attr.items() for c in range(a.shape[1])),
            key=lambda item: -item[0],
        )
        chosen = [
            {"layer": layer, "channel": c, "attribution": value, "reading": lookup.get((layer, c), "")}
            for value, layer, c in ranked[:top_channels]
            if value > 0
        ]
        shares = frame_importance(model, clip, target)
        shown = shares if frame_fn is None else frame_fn(model, clip, target)
        out.append(
            PredictionExplanation(
                video=str(name),
                top=top,
                target=int(target),
                channels=chosen,
                frame_importance=[float(v) for v in shown[0]],
                cam=grad_cam(model, cam_layer, clip, target)[0],
                cam_layer=cam_layer,
                label=labels[i],
                frame_method=method,
                frame_comparison=None if frame_fn is None else [float(v) for v in shares[0]],
            )
        )
    return out


def _name(classes: Sequence[str], k: int) -> str:
    return classes[k] if 0 <= k < len(classes) else str(k)
