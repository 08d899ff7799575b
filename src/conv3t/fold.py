"""``fold``: replace every Conv3T of a model by the plain ``nn.Conv3d`` it computes, for deployment."""

from __future__ import annotations

import copy

import torch
from torch import nn

from conv3t.nn import Conv3T
from conv3t.nn.time_padded import TimePaddedConv3d, TimePaddedConv3T

__all__ = ["fold", "fold_layer"]


def fold_layer(layer: Conv3T) -> nn.Conv3d:
    """An ``nn.Conv3d`` with ``layer``'s arguments whose weight is ``layer.kernel()`` (detached).

    Same device, dtype, train/eval mode and ``requires_grad`` as the layer's 2D filter; the output equals
    ``layer(x)`` for every input. Hooks registered on the layer are not carried over. A
    :class:`~conv3t.nn.time_padded.TimePaddedConv3T` (from :func:`~conv3t.models.convert`) becomes a
    ``TimePaddedConv3d`` with the same time padding: a plain ``Conv3d`` would drop it and shorten the clip.
    """
    if not isinstance(layer, Conv3T):
        raise TypeError(f"fold_layer expects a Conv3T, got {type(layer).__name__}")
    time_padding: dict[str, object] = {}
    if isinstance(layer, TimePaddedConv3T):
        time_padding = {"time_padding": layer.time_padding, "time_padding_mode": layer.time_padding_mode}
    conv = (TimePaddedConv3d if time_padding else nn.Conv3d)(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=layer.bias is not None,
        padding_mode=layer.padding_mode,
        device=layer.weight.device,
        dtype=layer.weight.dtype,
        **time_padding,
    )
    with torch.no_grad():
        conv.weight.copy_(layer.kernel())
        if layer.bias is not None:
            conv.bias.copy_(layer.bias)
    conv.weight.requires_grad_(layer.weight.requires_grad)
    if layer.bias is not None:
        conv.bias.requires_grad_(layer.bias.requires_grad)
    conv.train(layer.training)
    return conv


def fold(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in which every :class:`~conv3t.Conv3T` is an ``nn.Conv3d`` with its kernel.

    The copy gives the same outputs as ``model`` (up to float rounding) with plain PyTorch layers only, so it
    runs, scripts and exports (e.g. to ONNX) anywhere ``nn.Conv3d`` does, at a Conv3d's cost. Its convolution
    weights are the full ``(out, in/groups, D, kH, kW)`` kernels: more parameters than the 3T model and no
    temporal parameters any more. ``model`` itself is left unchanged. A Conv3T used at several places of the
    model stays shared in the copy. ``model`` may itself be a Conv3T.
    """
    if isinstance(model, Conv3T):
        return fold_layer(model)
    folded = copy.deepcopy(model)
    replaced: dict[int, nn.Conv3d] = {}
    for parent in list(folded.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv3T):
                if id(child) not in replaced:
                    replaced[id(child)] = fold_layer(child)
                setattr(parent, name, replaced[id(child)])
    return folded
