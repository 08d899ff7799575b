"""Model-level kernel generation: the sampling matrices of all Conv3T layers of one kernel size at once.

The cumulative sampling matrices ``[C_0 | ... | C_{D-1}]`` of a layer depend only on its kernel size and
its temporal parameters, not on its 2D filter or its channels. :func:`batch_kernel_generation` makes a model
build them for all its Conv3T layers of one kernel size (and dtype, device, depth) in one computation per
forward: one concatenation, ~25 operations for the matrices of the whole group forward + backward, one
split. Each layer then only runs its own kernel product (one operation forward, two backward). Kernels and
outputs equal those of the layers generating alone bit for bit; gradients of the temporal parameters agree to
float rounding (about 1e-7 relative in float32: the batched backward sums in another order).

It is an optimisation of the model's forward, not a change of the layer: a Conv3T called outside the
model's forward, or whose parameters changed after the model's forward began, generates its kernel alone.
Only layers that use the cumulative form (``kernel_method="matrix"`` with ``in/groups >= kH*kW``) and whose
temporal parameters need gradients take part; inference (``no_grad``) uses each layer's kernel cache.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from conv3t.nn import fused
from conv3t.nn.conv3t import TEMPORAL_PARAMETER_NAMES, Conv3T
from conv3t.nn.functional import resolve_method

__all__ = ["batch_kernel_generation", "shares_kernel_generation"]

_SHARED = "_conv3t_shared_layers"


def _group_key(layer: Conv3T) -> tuple[Any, ...] | None:
    """Layers with equal keys can share one computation; ``None``: the layer generates alone."""
    depth, kh, kw = layer.kernel_size
    params = layer.temporal_parameters().values()
    dtype = layer.weight.dtype
    if depth < 2 or dtype not in fused.FUSED_DTYPES or layer.weight.device.type == "meta":
        return None
    if not any(p.requires_grad for p in params):
        return None
    if resolve_method(layer.kernel_method, layer.in_channels // layer.groups, kh, kw) != "cumulative":
        return None
    if any(p.dtype != dtype or p.device != layer.weight.device for p in params):
        return None
    return (kh, kw, depth, dtype, layer.weight.device)


def _share(layers: list[Conv3T]) -> None:
    """Build the cumulative matrices of ``layers`` (one group) together and hand each layer its rows."""
    names = TEMPORAL_PARAMETER_NAMES
    _, kh, kw = layers[0].kernel_size
    flat = torch.cat([getattr(layer, name) for name in names for layer in layers])  # (4 * N, S)
    packed = flat.view(len(names), -1, flat.shape[-1])  # (4, N, S), N = all output channels of the group
    stacked = fused.cumulative_stack(fused.step_matrices(packed, kh, kw))  # (N, D * P, P)
    parts: tuple[Tensor, ...] = stacked.split([layer.out_channels for layer in layers])
    for layer, part in zip(layers, parts, strict=True):
        layer.__dict__["_shared_stack"] = (layer._temporal_key(), part)


def _precompute(model: nn.Module, args: tuple[Any, ...]) -> None:
    """Forward pre-hook: share the generation of every group of two or more layers for this forward."""
    _release(model)
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        return
    groups: dict[tuple[Any, ...], list[Conv3T]] = {}
    for module in model.modules():
        if isinstance(module, Conv3T):
            key = _group_key(module)
            if key is not None and module not in groups.get(key, ()):
                groups.setdefault(key, []).append(module)
    shared = [layers for layers in groups.values() if len(layers) > 1]
    if not shared:
        return
    device_type = shared[0][0].weight.device.type
    with torch.autocast(device_type, enabled=False):  # generation runs outside autocast, as in the layer
        for layers in shared:
            _share(layers)
    model.__dict__[_SHARED] = [layer for layers in shared for layer in layers]


def _release(model: nn.Module, *_: Any) -> None:
    """Forward hook (also after an exception): the layers drop their rows; the graph keeps what it needs."""
    for layer in model.__dict__.pop(_SHARED, ()):
        layer.__dict__.pop("_shared_stack", None)


def shares_kernel_generation(model: nn.Module) -> bool:
    """Whether :func:`batch_kernel_generation` is switched on for ``model``."""
    return any(hook is _precompute for hook in model._forward_pre_hooks.values())


def batch_kernel_generation(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Let ``model`` build the sampling matrices of its Conv3T layers in one computation per kernel size.

    Registers a forward pre-hook (and a forward hook that always runs) on ``model``; calling it again is a
    no-op, ``enabled=False`` removes them. The hooks are plain functions, so the model still pickles, deep
    copies and loads state dicts as before. Outputs and gradients are unchanged (see the module notes).
    Returns ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for key, hook in list(model._forward_pre_hooks.items()):
        if hook is _precompute:
            del model._forward_pre_hooks[key]
    for key, hook in list(model._forward_hooks.items()):
        if hook is _release:
            del model._forward_hooks[key]
            model._forward_hooks_always_called.pop(key, None)
    _release(model)
    if enabled:
        model.register_forward_pre_hook(_precompute)
        model.register_forward_hook(_release, always_call=True)
    return model
