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

:func:`conv3t.explain.methods.explain_clip` combines them into conv3t's explanation of one prediction
(the one the report shows and checks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from conv3t.explain.methods.saliency import frozen_parameters
from conv3t.models.outputs import logits
from conv3t.runtime import model_device

__all__ = [
    "ChannelAttribution",
    "frame_importance",
    "grad_cam",
    "gradcam_layer",
    "logits_of",
]


def logits_of(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """A forward function returning ``(N, classes)`` logits (:func:`conv3t.models.outputs.logits` of the model's
    output: the first output of models with auxiliary heads), the form captum's attribution classes take."""

    def forward(x: Tensor) -> Tensor:
        out = logits(model(x))
        if out.ndim != 2:
            raise TypeError(f"expected (N, classes) logits from the model, got shape {tuple(out.shape)}")
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
