"""Gradient saliency for one channel of one layer (Simonyan et al., 2014), through captum.

The saliency of a channel for an input clip is the gradient of the channel's activation with respect to
the input pixels. "The channel's activation" is a scalar per example, made by a *channel selector*
(:func:`channel_selector`) from the layer's output ``A`` ``(N, C, T', H', W')``:

* ``rectify=True`` (default) first takes the positive part ``max(A, 0)``: only positions where the channel
  fires count, as after the ReLU that follows every convolution of these networks. (Without it, the sum of a
  linear first layer has the same gradient everywhere: the filter's sum, whatever the clip shows.)
* ``reduce="sum"`` (default): the sum of channel ``c`` over all its positions ``(T', H', W')`` — every
  position where the filter fires contributes, so the saliency shows everything in the clip that drives the
  channel;
* ``reduce="max"``: the single strongest position (the gradient then flows through that position only).

``time_index`` restricts either reduction to one output time position ``τ`` (then over ``(H', W')``).

The network runs only as far as the layer. ``A`` is the layer module's own output (for a
:class:`~conv3t.Conv3T` layer: the convolution before BatchNorm), so channel numbers match the rows of
:func:`conv3t.explain.temporal_parameters`.

Two views, after the paper:

* 3D models (sec. 4.2, Fig. 2): a per-frame saliency *sequence* — :meth:`ChannelSaliency.attribute` with
  the default selector, one gradient map per input frame.
* 3T models (sec. 4.3, Fig. 3): the single frame with the highest activation —
  :meth:`ChannelSaliency.peak_frame`. Defined precisely as: (1) the peak output time position
  ``τ* = argmax_τ mean_{h,w} A⁺[c, τ, h, w]`` of the channel's spatially averaged (rectified) activation
  ``A⁺ = max(A, 0)``; (2) the gradient ``g`` of ``sum_{h,w} A⁺[c, τ*, h, w]`` with respect to the clip;
  (3) the input frame ``f* = argmax_f sum_{rgb,y,x} |g[:, f, y, x]|`` that contributes most to that peak.
  The result is the clip's frame ``f*`` and its gradient map.

Heat maps for display (:func:`saliency_map`) are ``max_rgb |g|`` per pixel, scaled by one maximum over the
whole clip so frames compare with each other; :func:`overlay` blends them over the frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from conv3t.nn import Conv3T
from conv3t.runtime import model_device

__all__ = [
    "ChannelSaliency",
    "PeakFrame",
    "channel_selector",
    "frozen_parameters",
    "overlay",
    "resolve_layer",
    "run_to_layer",
    "saliency_map",
]

Reduce = Literal["sum", "max"]


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """``(qualified name, module)`` for a layer given by name (``"layer2.0.conv1"``) or as a module of ``model``."""
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise ValueError(f"layer {type(layer).__name__} is not a submodule of the given model")
    try:
        return layer, model.get_submodule(layer)
    except AttributeError:
        convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv3d, Conv3T))]
        raise ValueError(
            f"layer {layer!r} not found in {type(model).__name__}; its convolution layers are: {', '.join(convs)}"
        ) from None


def channel_selector(
    channel: int, reduce: Reduce = "sum", time_index: int | None = None, rectify: bool = True
) -> Callable[[Tensor], Tensor]:
    """A captum ``neuron_selector``: layer output ``(N, C, T', H', W')`` -> one scalar per example ``(N,)``.

    ``reduce="sum"`` adds channel ``channel`` over its positions, ``"max"`` takes its largest value;
    ``time_index`` limits either to output time position ``time_index``; ``rectify`` uses ``max(A, 0)``.
    """
    if reduce not in ("sum", "max"):
        raise ValueError(f"reduce must be 'sum' or 'max', got {reduce!r}")

    def select(output: Tensor | tuple[Tensor, ...]) -> Tensor:
        if isinstance(output, tuple):
            output = output[0]
        if output.ndim != 5:
            raise ValueError(f"expected a layer output shaped (N, C, T, H, W), got {tuple(output.shape)}")
        if not 0 <= channel < output.shape[1]:
            raise ValueError(f"channel {channel} out of range: the layer has {output.shape[1]} channels")
        act = output[:, channel]
        if time_index is not None:
            if not 0 <= time_index < act.shape[1]:
                raise ValueError(f"time_index {time_index} out of range: the layer output has {act.shape[1]} steps")
            act = act[:, time_index]
        if rectify:
            act = torch.relu(act)
        flat = act.reshape(act.shape[0], -1)
        return flat.sum(1) if reduce == "sum" else flat.amax(1)

    return select


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Switch ``requires_grad`` off for every parameter of ``model`` (restored on exit).

    Explanations differentiate with respect to the input only; frozen weights also let each Conv3T reuse its
    cached kernel instead of generating it on every forward pass.
    """
    params = list(model.parameters())
    saved = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, saved):
            p.requires_grad_(flag)


class _Stop(Exception):
    """Raised by a forward hook once the target layer has run: nothing after it is needed."""


def run_to_layer(model: nn.Module, layer: nn.Module, x: Tensor) -> Tensor:
    """Run ``model`` on ``x`` only as far as ``layer`` and return that layer's output.

    A forward hook on ``layer`` stops the forward pass once the layer has produced its output; hooks
    registered on ``layer`` before this call (e.g. captum's) still see the output first.
    """
    captured: list[Tensor] = []

    def stop(_m: nn.Module, _i: object, out: Tensor | tuple[Tensor, ...]) -> None:
        captured.append(out[0] if isinstance(out, tuple) else out)
        raise _Stop

    handle = layer.register_forward_hook(stop)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"layer {type(layer).__name__} did not run during the forward pass")
    return captured[0]


@dataclass
class PeakFrame:
    """The 3T view of a channel's saliency for one clip (see the module docstring for the definition).

    Attributes:
        time_index: ``τ*``, the output time position where the channel's mean activation peaks.
        frame_index: ``f*``, the input frame contributing most to that peak.
        activation: ``(T',)`` the channel's spatially averaged rectified activation per output time position.
        frame_energy: ``(T,)`` ``sum |g|`` per input frame for the peak's gradient.
        gradient: ``(3, H, W)`` the gradient at frame ``f*``.
        frame: ``(3, H, W)`` the (normalised) input frame ``f*``.
    """

    time_index: int
    frame_index: int
    activation: Tensor
    frame_energy: Tensor
    gradient: Tensor
    frame: Tensor


class ChannelSaliency:
    """Gradient of a channel's activation with respect to the input clip, captum style.

    Args:
        model: a video network taking ``(N, 3, T, H, W)``; put it in eval mode (BatchNorm statistics).
        layer: the layer's qualified name (``"conv1"``, ``"layer3.1.conv2"``) or the module itself.

    Example::

        sal = ChannelSaliency(model, "layer2.0.conv1")
        grad = sal.attribute(clip, channel=5)      # (1, 3, T, H, W), same shape as clip
        peak = sal.peak_frame(clip[0], channel=5)  # the single most activating frame (3T view)
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module) -> None:
        # captum takes seconds to import; `from conv3t.explain import temporal_parameters` should not pay for it
        from captum.attr import NeuronGradient

        self.model = model
        self.layer_name, self.layer = resolve_layer(model, layer)
        # captum hooks the layer and reads its output; the forward function stops right after it
        self._captum = NeuronGradient(lambda x: run_to_layer(model, self.layer, x), self.layer)

    def attribute(
        self,
        clip: Tensor,
        channel: int,
        reduce: Reduce = "sum",
        time_index: int | None = None,
        rectify: bool = True,
    ) -> Tensor:
        """Gradient ``(N, 3, T, H, W)`` (same shape as ``clip``) of the selected channel activation.

        ``clip`` is the normalised model input ``(N, 3, T, H, W)``; see :func:`channel_selector` for
        ``reduce``, ``time_index`` and ``rectify``. Each example's gradient is that of its own activation.
        """
        if clip.ndim != 5:
            raise ValueError(f"clip must be (N, 3, T, H, W), got {tuple(clip.shape)}")
        selector = channel_selector(channel, reduce, time_index, rectify)
        x = clip.detach().to(model_device(self.model), copy=True).requires_grad_(True)
        with frozen_parameters(self.model), torch.enable_grad():
            grad = self._captum.attribute(x, selector)
        return grad.detach().to(clip.device)

    def activation(self, clip: Tensor) -> Tensor:
        """The layer's output ``(N, C, T', H', W')`` for ``clip`` (no gradients)."""
        with torch.no_grad():
            return run_to_layer(self.model, self.layer, clip.to(model_device(self.model))).detach().to(clip.device)

    def peak_frame(self, clip: Tensor, channel: int, rectify: bool = True) -> PeakFrame:
        """The single frame with the highest activation for one clip ``(3, T, H, W)`` (paper sec. 4.3).

        ``rectify=False`` uses the raw activation ``A`` instead of ``max(A, 0)`` in both the peak and the
        gradient (for a channel that does not fire anywhere in the clip).
        """
        if clip.ndim != 4:
            raise ValueError(f"peak_frame takes one clip (3, T, H, W), got {tuple(clip.shape)}")
        act = self.activation(clip[None])
        if not 0 <= channel < act.shape[1]:
            raise ValueError(f"channel {channel} out of range: layer {self.layer_name} has {act.shape[1]} channels")
        a = act[0, channel]
        per_time = (torch.relu(a) if rectify else a).mean(dim=(-2, -1))  # (T',)
        tau = int(per_time.argmax())
        grad = self.attribute(clip[None], channel, "sum", time_index=tau, rectify=rectify)[0]  # (3, T, H, W)
        energy = grad.abs().sum(dim=(0, 2, 3))  # (T,)
        frame = int(energy.argmax())
        return PeakFrame(tau, frame, per_time, energy, grad[:, frame], clip[:, frame].detach())


def saliency_map(gradient: Tensor, scale: float | None = None) -> Tensor:
    """Heat map in [0, 1] from a gradient ``(3, ..., H, W)``: ``max_rgb |g|`` divided by ``scale``.

    ``scale`` defaults to the maximum over the whole input, so the frames of a sequence share one scale.
    Returns ``(..., H, W)``.
    """
    heat = gradient.detach().abs().amax(dim=0)
    peak = float(heat.max()) if scale is None else float(scale)
    return heat / peak if peak > 0 else torch.zeros_like(heat)


def overlay(image: Tensor, heat: Tensor, alpha: float = 0.6, cmap: str = "inferno", gamma: float = 0.5) -> np.ndarray:
    """Blend a heat map over an image for display.

    Args:
        image: ``(3, H, W)`` pixels in [0, 1] (denormalise model inputs first).
        heat: ``(H, W)`` in [0, 1], e.g. from :func:`saliency_map`.
        alpha: opacity of the heat map where it is strongest (it fades with the heat).
        cmap: matplotlib colour map name.
        gamma: heat ** gamma before colouring; < 1 lifts weak gradients so they stay visible.

    Returns:
        ``uint8 (H, W, 3)`` RGB.
    """
    from matplotlib import colormaps  # only the report draws overlays; importing explain stays light

    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    if heat.shape != image.shape[1:]:
        raise ValueError(f"heat map {tuple(heat.shape)} does not match the image size {tuple(image.shape[1:])}")
    base = image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    h = heat.detach().clamp(0, 1).cpu().numpy() ** gamma
    colour = colormaps[cmap](h)[..., :3]
    a = alpha * h[..., None]
    out = (1 - a) * base + a * colour
    return (out * 255 + 0.5).astype(np.uint8)
