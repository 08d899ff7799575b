"""Rewrite a traced 2D graph into a video graph: every value that was an image map gets a time axis.

Each tensor value is tracked by where its time axis sits (:class:`Timed`): an image map ``(N, C, H, W)``
becomes a clip ``(N, C, T, H, W)``; a channels-last map ``(N, H, W, C)`` (ConvNeXt's ``LayerNorm``) becomes
``(N, T, H, W, C)``; a channel-regrouped map ``(N, g, C/g, H, W)`` (ShuffleNet) becomes ``(N, g, C/g, T, H, W)``.
The time axis always sits just before the two spatial axes. Each operation on such a value is rewritten by
the rule for it (:mod:`.rules`); an operation with no rule stops the conversion with an error that names it
and its module path. Values that never carry time (the classifier after the global pool) are untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx, nn

from conv3t.models.conversion.report import ConversionError, OpRewrite
from conv3t.models.conversion.trace import shape_of

__all__ = ["GraphRewriter", "RuleSet", "Timed", "module_path", "op_name"]


@dataclass(frozen=True)
class Timed:
    """Where the time axis of a video value sits.

    Attributes:
        t: index of the time axis in the video tensor.
        rank: number of dimensions of the 2D tensor (the video tensor has ``rank + 1``).
    """

    t: int
    rank: int

    @property
    def from_end(self) -> int:
        """Position of the time axis counted from the end (3 for ``(N, C, T, H, W)``)."""
        return self.rank + 1 - self.t

    def normalise(self, dim: int) -> int:
        """A 2D dimension index as a non-negative index of the 2D tensor."""
        d = dim + self.rank if dim < 0 else dim
        if not 0 <= d < self.rank:
            raise IndexError(f"dimension {dim} out of range for a {self.rank}-D tensor")
        return d

    def dim(self, dim: int) -> int:
        """The video index of 2D dimension ``dim`` (negative stays negative)."""
        d = self.normalise(dim)
        video = d if d < self.t else d + 1
        return video - (self.rank + 1) if dim < 0 else video


def op_name(node: fx.Node) -> str:
    """A readable name of a node's operation: ``F.max_pool2d``, ``Tensor.mean``, ``torch.cat``, ``operator.add``."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_module":
        return f"module {node.target}"
    target = node.target
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", None) or ("torch" if getattr(torch, name, None) is target else "")
    module = {"torch.nn.functional": "F", "_operator": "operator", "torch._C._nn": "F", "builtins": ""}.get(
        module, module
    )
    if name == "fn" and hasattr(target, "__qualname__"):
        name = str(node.target)
    return f"{module}.{name}" if module else name


def module_path(node: fx.Node) -> str:
    """The module whose forward performs ``node`` (``""`` for the model's own forward)."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    value = list(stack.values())[-1]
    return str(value[0]) if isinstance(value, tuple) else str(list(stack)[-1])


Handler = Callable[["GraphRewriter", fx.Node], None]


@dataclass(frozen=True)
class RuleSet:
    """The rewrite rules (:data:`conv3t.models.conversion.rules.RULES`): by function, by method name, and the
    one rule for calls of leaf modules."""

    functions: dict[object, Handler]
    methods: dict[object, Handler]
    module: Handler


class GraphRewriter:
    """Rewrites ``gm.graph`` in place (one traced mode); :meth:`run` returns the rewritten operations.

    The rules themselves live in :mod:`.rules`; this class keeps the bookkeeping: which values carry time,
    where, and what was rewritten.
    """

    def __init__(self, gm: fx.GraphModule, mode: str, rules: RuleSet) -> None:
        self.gm = gm
        self.graph = gm.graph
        self.mode = mode
        self.modules: dict[str, nn.Module] = dict(gm.named_modules())
        self.timed: dict[fx.Node, Timed] = {}
        self.tuples: dict[fx.Node, Timed] = {}  # tuples of video tensors (chunk, split, pooling with indices)
        self.sizes: dict[fx.Node, Timed] = {}  # x.size() / x.shape of a video tensor
        self.ops: list[OpRewrite] = []
        self._rules = rules

    def run(self) -> list[OpRewrite]:
        image_seen = False
        for node in list(self.graph.nodes):
            if node.op == "placeholder":
                image_seen = self._placeholder(node, image_seen)
            elif node.op == "output":
                self._output(node)
            elif node.op in ("call_function", "call_method", "call_module") and self.carries_time(node):
                self._rule(node)(self, node)
        self.graph.lint()
        return self.ops

    def carries_time(self, node: fx.Node) -> bool:
        return any(a in self.timed or a in self.tuples or a in self.sizes for a in node.all_input_nodes)

    def _placeholder(self, node: fx.Node, image_seen: bool) -> bool:
        if image_seen:
            return True  # further inputs (with defaults) carry no time
        shape = shape_of(node)
        if shape is None or len(shape) != 4:
            raise ConversionError(f"the model's input {node.name!r} is not an image batch (N, C, H, W): {shape}")
        self.timed[node] = Timed(2, 4)
        return True

    def _output(self, node: fx.Node) -> None:
        leftover = [a.name for a in node.all_input_nodes if a in self.timed or a in self.tuples]
        if leftover:
            raise ConversionError(
                f"{type(self.gm).__name__} is not a classifier: in {self.mode} mode its forward returns image maps "
                f"(graph values {', '.join(leftover)}); convert expects (N, C, H, W) -> (N, K) logits, the maps "
                f"pooled before the output"
            )

    def _rule(self, node: fx.Node) -> Handler:
        if node.op == "call_module":
            return self._rules.module
        table = self._rules.methods if node.op == "call_method" else self._rules.functions
        try:
            handler = table.get(node.target)
        except TypeError:  # an unhashable target
            handler = None
        if handler is None and callable(node.target):  # rules may name functions of optional imports
            handler = table.get(f"{getattr(node.target, '__module__', '')}.{getattr(node.target, '__name__', '')}")
        if handler is None:
            raise self.error(node, "this operation has no video form in conv3t's converter")
        return handler

    def error(self, node: fx.Node, why: str) -> ConversionError:
        path = module_path(node)
        where = f"in {path}" if path else "in the model's own forward"
        return ConversionError(
            f"cannot convert {op_name(node)} {where} ({self.mode} mode, node {node.name!r}): {why}. Nothing was "
            f"converted; replace the operation with a torch.nn layer or a supported function, or ask for it"
        )

    def record(self, node: fx.Node, into: str, op: str | None = None) -> None:
        self.ops.append(OpRewrite(self.mode, module_path(node), op or op_name(node), into))

    def time_of(self, node: fx.Node, arg: object) -> Timed:
        """The :class:`Timed` of a video-tensor argument; an error for anything else."""
        if isinstance(arg, fx.Node) and arg in self.timed:
            return self.timed[arg]
        raise self.error(node, f"expected an image map as its input, got {arg!r}")

    def replace(self, node: fx.Node, target: Callable[..., object], args: tuple, kwargs: dict | None = None) -> fx.Node:
        """Put a call of ``target`` in place of ``node`` (same users); returns the new node."""
        with self.graph.inserting_before(node):
            new = self.graph.call_function(target, args, kwargs or {})
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        self.graph.erase_node(node)
        return new
