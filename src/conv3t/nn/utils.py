"""Model-level helpers around :class:`~conv3t.nn.Conv3T`: find the layers, initialise their temporal parameters."""

from __future__ import annotations

import torch
from torch import nn

from conv3t.nn.conv3t import Conv3T

__all__ = ["conv3t_layers", "randomize_temporal_parameters"]


def conv3t_layers(model: nn.Module, min_depth: int = 1) -> list[tuple[str, Conv3T]]:
    """All ``Conv3T`` modules of ``model`` as ``(qualified name, module)``, in registration order.

    ``min_depth``: keep only layers whose temporal depth ``D`` is at least this (2: layers that have temporal
    parameters at all). A model that is itself a ``Conv3T`` is returned under the name ``""``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Conv3T) and m.temporal_depth >= min_depth]


@torch.no_grad()
def randomize_temporal_parameters(
    model: nn.Module,
    bound: float,
    generator: torch.Generator | None = None,
    scale_bound: float = 0.0,
    *,
    per_channel: bool = False,
) -> int:
    """Draw every Conv3T's rotation, translation_x and translation_y uniformly from ``[-bound, bound]``.

    Rotation is in radians, translations in ``affine_grid`` units. ``scale_bound``: scale is drawn from
    ``[1 - scale_bound, 1 + scale_bound]`` (default 0: scale stays 1). ``per_channel``: one draw per output
    channel, used at every step, so each channel starts as one constant motion; by default every channel and
    step is drawn on its own (motions that change direction from step to step). Uses ``generator``, or torch's
    global RNG when ``None`` (seeded by ``seed_everything``). Returns the number of layers changed.
    """
    if bound < 0 or scale_bound < 0:
        raise ValueError(f"bound and scale_bound must be >= 0, got {bound}, {scale_bound}")
    layers = conv3t_layers(model, min_depth=2)
    for _, layer in layers:
        # (out, D-1) parameters; per channel: an (out, 1) draw broadcast over the steps
        shape = (layer.scale.shape[0], 1) if per_channel else tuple(layer.scale.shape)
        for p in (layer.rotation, layer.translation_x, layer.translation_y):
            p.copy_(p.new_empty(shape).uniform_(-bound, bound, generator=generator).expand_as(p))
        if scale_bound > 0:
            draw = layer.scale.new_empty(shape).uniform_(1 - scale_bound, 1 + scale_bound, generator=generator)
            layer.scale.copy_(draw.expand_as(layer.scale))
    return len(layers)
