"""Which layers of a video network have a temporal extent: the one rule every explainer and the report use.

A *temporal layer* is a :class:`~conv3t.nn.Conv3T` or a :class:`torch.nn.Conv3d` whose kernel spans more than
one frame (``kernel_size[0] > 1``). The rule goes by each module's type and kernel, never by what kind of model
holds it:

* a ``Conv3d`` with depth > 1 inside a 3T model counts (``Sequential(Conv3T, Conv3d)`` gives both): it mixes
  frames as much as the Conv3T does, and leaving it out would credit the Conv3T with its work;
* a ``(1, k, k)`` ``Conv3d`` (or a ``Conv3T`` of depth 1) never counts, whatever else the model has: it sees one
  frame at a time, so nothing it does is temporal;
* a model without any such layer (a frame-by-frame network) has none: callers that need layers say so.
"""

from __future__ import annotations

from torch import nn

from conv3t.nn import Conv3T

__all__ = ["is_temporal", "temporal_layers"]


def is_temporal(module: nn.Module) -> bool:
    """Whether ``module`` is a Conv3T or Conv3d whose kernel spans more than one frame (module notes)."""
    return isinstance(module, Conv3T | nn.Conv3d) and int(module.kernel_size[0]) > 1


def temporal_layers(model: nn.Module) -> list[str]:
    """Qualified names of ``model``'s temporal layers (:func:`is_temporal`), in registration order; ``[]`` for a
    model without any (a model that is itself one is named ``""``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [name for name, module in model.named_modules() if is_temporal(module)]
