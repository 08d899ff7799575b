"""Trace a 2D model with torch.fx in one mode (train or eval) and record the 2D shape of every value.

Replaceable layers (:func:`~.layers.replaceable`) are leaves of the trace; everything else is traced into, so
the graph holds the functional operations a model's ``forward`` performs (``F.max_pool2d``, ``x.mean((2, 3))``,
``torch.cat``, channel shuffles, permutes around ``LayerNorm``). Python control flow that reads
``self.training`` is resolved at trace time, which is why each mode gets its own trace.
"""

from __future__ import annotations

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from conv3t.models.conversion.layers import replaceable
from conv3t.models.conversion.report import ConversionError

__all__ = ["ConversionTracer", "propagate_shapes", "shape_of", "trace_2d"]


class ConversionTracer(fx.Tracer):
    """torch.fx tracer whose leaves are torch.nn's own layers and every layer the converter replaces."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return replaceable(m) or super().is_leaf_module(m, module_qualified_name)


def _set_modes(model: nn.Module, modes: dict[str, bool]) -> None:
    for name, module in model.named_modules():
        module.training = modes[name]


def trace_2d(model: nn.Module, training: bool) -> fx.GraphModule:
    """``model``'s forward traced in train (``training=True``) or eval mode (flags restored afterwards).

    Raises:
        ConversionError: the forward cannot be traced (Python control flow on tensor values, ...).
    """
    modes = {name: m.training for name, m in model.named_modules()}
    mode = "train" if training else "eval"
    try:
        model.train(training)
        graph = ConversionTracer().trace(model)
    except Exception as err:  # fx raises TraceError, TypeError, RuntimeError, ... from user code
        raise ConversionError(
            f"{type(model).__name__} cannot be traced with torch.fx in {mode} mode ({type(err).__name__}: "
            f"{err}); its functional 2D operations cannot be found and rewritten. Convert a model whose "
            f"forward does not branch on tensor values, or move the untraceable part into a submodule "
            f"made only of torch.nn layers"
        ) from err
    finally:
        _set_modes(model, modes)
    return fx.GraphModule(model, graph, class_name=type(model).__name__)


def propagate_shapes(gm: fx.GraphModule, example: tuple[int, int, int, int], mode: str) -> None:
    """Record the 2D shape of every node of ``gm`` (``node.meta["tensor_meta"]``) for an input of shape
    ``example``, on the meta device (see :func:`_propagate`).

    Shapes do not depend on the layers' mode, but BatchNorm's training-mode bookkeeping reads tensor values
    (``momentum=None`` divides by ``num_batches_tracked``), which meta tensors do not have: the layers run in
    eval mode whatever graph is propagated (flags restored afterwards).
    """
    modes = {name: m.training for name, m in gm.named_modules()}
    try:
        gm.eval()
        _propagate(gm, example, mode)
    finally:
        _set_modes(gm, modes)


class _Propagation(nn.Module):
    """Runs :class:`ShapeProp` over ``gm`` as its forward, so that ``functional_call`` can lend it meta tensors."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__()
        self.gm = gm

    def forward(self, x: torch.Tensor) -> object:
        return ShapeProp(self.gm).propagate(x)


def _propagate(gm: fx.GraphModule, example: tuple[int, int, int, int], mode: str) -> None:
    """Shapes of every node, computed on the meta device: the parameters are swapped for meta tensors for the
    duration (no copy of the model, no memory, no arithmetic)."""
    from torch.func import functional_call

    runner = _Propagation(gm)
    tensors = {k: torch.empty_like(v, device="meta") for k, v in runner.state_dict(keep_vars=True).items()}
    try:
        with torch.no_grad():
            functional_call(runner, tensors, (torch.empty(example, device="meta"),), strict=False)
    except Exception as err:
        raise ConversionError(
            f"the 2D model fails in {mode} mode on an input of shape {example} ({type(err).__name__}: {err}); "
            f"pass an image_size it accepts"
        ) from err


def shape_of(node: fx.Node) -> tuple[int, ...] | None:
    """The 2D shape of a tensor-valued node (``None`` for anything else)."""
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)
