"""The rewrite rule of every operation the converter knows, keyed by function or method name.

A rule receives the :class:`~.rewrite.GraphRewriter` and a node with at least one video input; it rewrites the
node (or leaves it, when the 2D operation already does the right thing on a clip), records what it did and
notes where the output's time axis sits. Families of rules:

* elementwise operations and activations (any rank): unchanged; an operand without time whose rank reaches the
  time axis (a layer scale ``(C, 1, 1)``) gets a unit time axis so it broadcasts as it did against an image;
* operations with a ``dim``: the dimension is renumbered (``torch.cat(dim=1)`` stays 1, ``dim=3`` becomes 4);
* reductions over both spatial dimensions (``x.mean((2, 3))``, global pooling) reduce over time too;
* ``permute``/``transpose``: time is carried along, just before the spatial axes (ConvNeXt's channels-last
  ``LayerNorm``); ``view``/``reshape`` that regroup channels keep batch, time and space (ShuffleNet);
  ``flatten`` and ``view(N, -1)`` after global pooling flatten a unit time axis;
* 2D pooling, ``F.interpolate`` and ``F.pad``: the per-frame forms of :mod:`.ops`.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from conv3t.models.conversion import ops
from conv3t.models.conversion.layers import replaceable
from conv3t.models.conversion.rewrite import GraphRewriter, RuleSet, Timed, op_name
from conv3t.models.conversion.trace import shape_of

__all__ = ["FUNCTION_RULES", "METHOD_RULES", "RULES", "module_rule"]

Rule = Callable[[GraphRewriter, fx.Node], None]


def _arg(node: fx.Node, index: int, name: str, default: object = None) -> object:
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def _set_arg(node: fx.Node, index: int, name: str, value: object) -> None:
    if len(node.args) > index:
        args = list(node.args)
        args[index] = value
        node.args = tuple(args)
    else:
        node.kwargs = {**node.kwargs, name: value}


def elementwise(rw: GraphRewriter, node: fx.Node) -> None:
    """Any-rank operations: broadcast operands without time get a unit time axis where needed."""
    if any(a in rw.tuples or a in rw.sizes for a in node.all_input_nodes):
        raise rw.error(node, "it mixes a tuple or size of a clip with tensors")
    distances = {rw.timed[a].from_end for a in node.all_input_nodes if a in rw.timed}
    if len(distances) != 1:
        raise rw.error(node, "its inputs have their time axes in different places")
    k = distances.pop()
    out = shape_of(node)
    if out is None:
        raise rw.error(node, "it does not return a tensor")
    for a in list(dict.fromkeys(node.all_input_nodes)):
        shape = shape_of(a)
        if a in rw.timed or shape is None or len(shape) < k:
            continue
        with rw.graph.inserting_before(node):
            unit = rw.graph.call_function(torch.unsqueeze, (a, -k))
        node.replace_input_with(a, unit)
        rw.record(node, f"operand {a.name} {shape} given a unit time axis (unsqueeze({-k}))")
    rw.timed[node] = Timed(len(out) + 1 - k, len(out))


def layer_norm(rw: GraphRewriter, node: fx.Node) -> None:
    shape = _arg(node, 1, "normalized_shape")
    count = 1 if isinstance(shape, int) else len(shape)  # type: ignore[arg-type]
    if count >= rw.time_of(node, node.args[0]).from_end:
        raise rw.error(node, f"it normalises over {count} trailing dimensions, which would include time")
    elementwise(rw, node)


def _dim_rule(index: int, name: str, default: int | None, output: str = "tensor") -> Rule:
    def rule(rw: GraphRewriter, node: fx.Node) -> None:
        first = node.args[0]
        inputs = list(first) if isinstance(first, list | tuple) else [first]
        times = {rw.timed.get(a) for a in inputs if isinstance(a, fx.Node)}
        if len(times) != 1 or None in times:
            raise rw.error(node, "its tensor inputs must all be image maps of the same layout")
        tm = times.pop()
        dim = _arg(node, index, name, default)
        if not isinstance(dim, int):
            raise rw.error(node, f"its dim must be a constant int, got {dim!r}")
        video = tm.dim(dim)  # type: ignore[union-attr]
        if video != dim:
            _set_arg(node, index, name, video)
            rw.record(node, f"dim {dim} -> {video}")
        (rw.tuples if output == "tuple" else rw.timed)[node] = tm  # type: ignore[assignment]

    return rule


def reduction(rw: GraphRewriter, node: fx.Node) -> None:
    """``mean``/``sum``/``amax``/``amin`` over dims; both spatial dims reduced -> time reduced too."""
    tm = rw.time_of(node, node.args[0])
    dims = _arg(node, 1, "dim")
    if dims is None:
        return  # a reduction over everything has no time axis left
    seq = [dims] if isinstance(dims, int) else list(dims)  # type: ignore[arg-type]
    if not all(isinstance(d, int) for d in seq):
        raise rw.error(node, f"its dims must be constant ints, got {dims!r}")
    norm = sorted({tm.normalise(d) for d in seq})
    video = [tm.dim(d) for d in norm]
    over_time = tm.t in norm and tm.t + 1 in norm
    if over_time:
        video = sorted([*video, tm.t])
        rw.record(node, f"dims {tuple(seq)} -> {tuple(video)} (pools over time too)")
    elif video != seq:
        rw.record(node, f"dims {tuple(seq)} -> {tuple(video)}")
    _set_arg(node, 1, "dim", tuple(video))
    if bool(_arg(node, 2, "keepdim", False)):
        rw.timed[node] = tm
    elif not over_time:
        rw.timed[node] = Timed(tm.t - sum(d < tm.t for d in norm), tm.rank - len(norm))


def _permute_to(rw: GraphRewriter, node: fx.Node, perm: list[int]) -> None:
    tm = rw.time_of(node, node.args[0])
    perm = [tm.normalise(d) for d in perm]
    video = [tm.dim(d) for d in perm]
    j = perm.index(tm.t)  # time goes just before the first spatial axis, wherever that moves
    video.insert(j, tm.t)
    x = node.args[0]
    name = op_name(node)
    new = rw.replace(node, torch.permute, (x, video))
    rw.record(new, f"permute{tuple(perm)} -> permute{tuple(video)}", op=name)
    rw.timed[new] = Timed(j, tm.rank)


def permute(rw: GraphRewriter, node: fx.Node) -> None:
    if node.op == "call_method":
        dims = node.args[1:]
        if len(dims) == 1 and isinstance(dims[0], list | tuple):
            dims = tuple(dims[0])
    else:
        dims = _arg(node, 1, "dims")  # type: ignore[assignment]
    if not all(isinstance(d, int) for d in dims):
        raise rw.error(node, f"its dims must be constant ints, got {dims!r}")
    _permute_to(rw, node, list(dims))  # type: ignore[arg-type]


def transpose(rw: GraphRewriter, node: fx.Node) -> None:
    tm = rw.time_of(node, node.args[0])
    a, b = _arg(node, 1, "dim0"), _arg(node, 2, "dim1")
    if not isinstance(a, int) or not isinstance(b, int):
        raise rw.error(node, "its dims must be constant ints")
    perm = list(range(tm.rank))
    a, b = tm.normalise(a), tm.normalise(b)
    perm[a], perm[b] = perm[b], perm[a]
    _permute_to(rw, node, perm)


def flatten(rw: GraphRewriter, node: fx.Node) -> None:
    tm = rw.time_of(node, node.args[0])
    start = tm.normalise(_arg(node, 1, "start_dim", 0))  # type: ignore[arg-type]
    end = tm.normalise(_arg(node, 2, "end_dim", -1))  # type: ignore[arg-type]
    if end != tm.rank - 1 or start > tm.t:
        raise rw.error(
            node,
            "it flattens only part of an image map (supported: from a dimension at or before "
            "the spatial ones through the last)",
        )
    new = rw.replace(node, torch.flatten, (node.args[0], start, -1))
    rw.record(
        new,
        f"flatten({start}) of the clip: time flattened too (one step after global pooling)",
        op=f"{'Tensor.' if node.op == 'call_method' else 'torch.'}flatten",
    )


def reshape(rw: GraphRewriter, node: fx.Node) -> None:
    """``view``/``reshape``: channel regrouping keeps batch, time and space; ``(N, -1)`` flattens."""
    x = node.args[0]
    tm = rw.time_of(node, x)
    s_in, s_out = shape_of(x), shape_of(node)  # type: ignore[arg-type]
    tail = s_in[tm.t :]  # type: ignore[index]
    n = len(tail)
    if (
        s_out is not None
        and len(s_out) > n
        and s_out[0] == s_in[0]  # type: ignore[index]
        and s_out[len(s_out) - n :] == tail
        and math.prod(s_out[1 : len(s_out) - n]) == math.prod(s_in[1 : tm.t])  # type: ignore[index]
    ):
        middle = tuple(s_out[1 : len(s_out) - n])
        name = op_name(node)
        new = rw.replace(node, ops.reshape_before_time, (x, middle, n))
        rw.record(new, f"regroups channels {s_in[1 : tm.t]} -> {middle}, keeping batch, time and space", op=name)  # type: ignore[index]
        rw.timed[new] = Timed(len(s_out) - n, len(s_out))
    elif s_out is not None and len(s_out) == 2 and s_out[0] == s_in[0]:  # type: ignore[index]
        name = op_name(node)
        new = rw.replace(node, ops.flatten_clip, (x,))
        rw.record(new, "flatten_clip (N, -1): time flattened too (one step after global pooling)", op=name)
    else:
        raise rw.error(node, f"a reshape {s_in} -> {s_out} that is neither a channel regrouping nor a flatten")


def unsqueeze(rw: GraphRewriter, node: fx.Node) -> None:
    tm = rw.time_of(node, node.args[0])
    d = _arg(node, 1, "dim")
    if not isinstance(d, int):
        raise rw.error(node, "its dim must be a constant int")
    pos = d if d >= 0 else d + tm.rank + 1
    video, t = (pos, tm.t + 1) if pos <= tm.t else (pos + 1, tm.t)
    _set_arg(node, 1, "dim", video)
    rw.record(node, f"dim {d} -> {video}")
    rw.timed[node] = Timed(t, tm.rank + 1)


def squeeze(rw: GraphRewriter, node: fx.Node) -> None:
    tm = rw.time_of(node, node.args[0])
    d = _arg(node, 1, "dim")
    if not isinstance(d, int):
        raise rw.error(node, "squeeze without a constant int dim could squeeze the time axis")
    pos = tm.normalise(d)
    _set_arg(node, 1, "dim", tm.dim(pos))
    rw.record(node, f"dim {d} -> {tm.dim(pos)}")
    rw.timed[node] = Timed(tm.t - 1 if pos < tm.t else tm.t, tm.rank - 1)


def _size_bound(tm: Timed, v: int | None, stop: bool) -> int | None:
    if v is None:
        return None
    pos = v + tm.rank if v < 0 else v
    video = (pos if pos <= tm.t else pos + 1) if stop else (pos if pos < tm.t else pos + 1)
    return video - (tm.rank + 1) if v < 0 else video


def getitem(rw: GraphRewriter, node: fx.Node) -> None:
    src, index = node.args
    if src in rw.tuples and isinstance(index, int):
        rw.timed[node] = rw.tuples[src]  # type: ignore[index]
    elif src in rw.sizes:
        tm = rw.sizes[src]  # type: ignore[index]
        if isinstance(index, int):
            video: object = tm.dim(index)
        elif isinstance(index, slice):
            video = slice(_size_bound(tm, index.start, False), _size_bound(tm, index.stop, True), index.step)
        else:
            raise rw.error(node, f"an index {index!r} into the size of a clip")
        if video != index:
            node.args = (src, video)
            rw.record(node, f"size index {index!r} -> {video!r}", op="Tensor.size()[...]")
    elif src in rw.timed:
        tm = rw.timed[src]  # type: ignore[index]
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) > tm.t or not all(isinstance(i, int | slice) for i in idx):
            raise rw.error(node, f"indexing {index!r} reaches the spatial axes of an image map")
        ints = sum(isinstance(i, int) for i in idx)
        rw.timed[node] = Timed(tm.t - ints, tm.rank - ints)
    else:
        raise rw.error(node, "an index with an image map inside")


def size(rw: GraphRewriter, node: fx.Node) -> None:
    tm = rw.time_of(node, node.args[0])
    d = _arg(node, 1, "dim")
    if d is None:
        rw.sizes[node] = tm
    elif isinstance(d, int):
        _set_arg(node, 1, "dim", tm.dim(d))
        if tm.dim(d) != d:
            rw.record(node, f"dim {d} -> {tm.dim(d)}")
    else:
        raise rw.error(node, "its dim must be a constant int")


def get_attribute(rw: GraphRewriter, node: fx.Node) -> None:
    name = node.args[1]
    if name == "shape":
        rw.sizes[node] = rw.time_of(node, node.args[0])
    elif name == "ndim":
        rank(rw, node)
    elif name not in ("dtype", "device", "is_cuda", "requires_grad", "is_contiguous"):
        raise rw.error(node, f"the attribute {name!r} of an image map has no video form")


def rank(rw: GraphRewriter, node: fx.Node) -> None:
    """``x.ndim`` / ``x.dim()``: the rank the 2D code expects (asserts, messages), i.e. without time."""
    rw.time_of(node, node.args[0])
    name = op_name(node)
    new = rw.replace(node, ops.image_rank, (node.args[0],))
    rw.record(new, "image_rank(x): the clip's rank without its time axis", op=name)


def _clip_op(fn: Callable[..., object], indices_at: int | None = None) -> Rule:
    def rule(rw: GraphRewriter, node: fx.Node) -> None:
        x = node.args[0] if node.args else node.kwargs.get("input")
        if rw.time_of(node, x) != Timed(2, 4):
            raise rw.error(node, "its input is not an image map (N, C, H, W)")
        if fn is ops.pad_frames and len(_arg(node, 1, "pad", ())) > 4:  # type: ignore[arg-type]
            raise rw.error(node, "it pads more than the two spatial dimensions")
        indices = indices_at is not None and bool(_arg(node, indices_at, "return_indices", False))
        name = op_name(node)
        new = rw.replace(node, fn, node.args, dict(node.kwargs))
        rw.record(new, f"conv3t.models.conversion.ops.{fn.__name__}", op=name)
        (rw.tuples if indices else rw.timed)[new] = Timed(2, 4)

    return rule


# Leaf modules that work on a clip as they work on an image (elementwise, per channel, or on the last dim).
AGNOSTIC_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU,
    nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.PReLU, nn.Identity, nn.Dropout,
    nn.AlphaDropout, nn.GroupNorm, nn.LocalResponseNorm, nn.ChannelShuffle, nn.Linear, nn.LayerNorm,
    nn.Softsign, nn.Threshold, nn.LogSigmoid, nn.Tanhshrink,
)  # fmt: skip


def module_rule(rw: GraphRewriter, node: fx.Node) -> None:
    m = rw.modules[str(node.target)]
    tm = rw.time_of(node, node.args[0] if node.args else None)
    if any(a in rw.timed or a in rw.tuples for a in node.all_input_nodes[1:]):
        raise rw.error(node, f"{type(m).__name__} takes several image maps")
    if replaceable(m):
        if tm != Timed(2, 4):
            raise rw.error(node, f"{type(m).__name__} receives a map of another layout than (N, C, H, W)")
        (rw.tuples if getattr(m, "return_indices", False) else rw.timed)[node] = tm
        return
    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) >= tm.from_end:
        raise rw.error(node, f"LayerNorm over {m.normalized_shape} would normalise over time")
    if isinstance(m, nn.Flatten):
        start, end = tm.normalise(m.start_dim), tm.normalise(m.end_dim)
        if end != tm.rank - 1 or start > tm.t:
            raise rw.error(node, "nn.Flatten flattens only part of an image map")
        return
    if isinstance(m, nn.Softmax | nn.LogSoftmax | nn.Softmin):
        if m.dim is None or tm.normalise(m.dim) >= tm.t:
            raise rw.error(node, f"{type(m).__name__}(dim={m.dim}) over a spatial dimension")
    elif not isinstance(m, AGNOSTIC_MODULES):
        raise rw.error(node, f"{type(m).__module__}.{type(m).__name__} has no video form in conv3t's converter")
    out = shape_of(node)
    if out is None:
        raise rw.error(node, f"{type(m).__name__} does not return a tensor")
    rw.timed[node] = Timed(len(out) + 1 - tm.from_end, len(out))


_ELEMENTWISE_FUNCTIONS = [
    operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.isub, operator.imul,
    operator.itruediv, operator.neg, operator.pow, torch.add, torch.sub, torch.mul, torch.div, torch.relu,
    torch.relu_, torch.sigmoid, torch.tanh, torch.clamp, torch.exp, torch.maximum, torch.minimum, torch.abs,
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.hardtanh, F.leaky_relu,
    F.elu, F.selu, F.celu, F.mish, F.softplus, F.dropout, F.alpha_dropout, F.batch_norm, F.group_norm, F.prelu,
    # by qualified name: importing torchvision here would slow every `import conv3t.models` by a second
    "torchvision.ops.stochastic_depth.stochastic_depth",
]  # fmt: skip
_ELEMENTWISE_METHODS = [
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "add", "add_", "sub", "sub_", "mul", "mul_",
    "div", "div_", "clamp", "clamp_", "clamp_min", "clamp_min_", "contiguous", "clone", "float", "half",
    "double", "to", "type_as", "exp", "pow", "sqrt", "rsqrt", "abs", "neg", "detach", "hardswish",
]  # fmt: skip
_REDUCTIONS = ["mean", "sum", "amax", "amin"]

FUNCTION_RULES: dict[object, Rule] = {
    **dict.fromkeys(_ELEMENTWISE_FUNCTIONS, elementwise),
    **{getattr(torch, name): reduction for name in _REDUCTIONS},
    F.layer_norm: layer_norm,
    torch.cat: _dim_rule(1, "dim", 0),
    torch.concat: _dim_rule(1, "dim", 0),
    torch.chunk: _dim_rule(2, "dim", 0, "tuple"),
    torch.split: _dim_rule(2, "dim", 0, "tuple"),
    F.softmax: _dim_rule(1, "dim", None),
    F.log_softmax: _dim_rule(1, "dim", None),
    F.normalize: _dim_rule(2, "dim", 1),
    torch.permute: permute,
    torch.transpose: transpose,
    torch.flatten: flatten,
    torch.reshape: reshape,
    torch.unsqueeze: unsqueeze,
    torch.squeeze: squeeze,
    operator.getitem: getitem,
    builtins.getattr: get_attribute,
    F.max_pool2d: _clip_op(ops.max_pool_clip, indices_at=6),
    F.avg_pool2d: _clip_op(ops.avg_pool_clip),
    F.adaptive_avg_pool2d: _clip_op(ops.adaptive_avg_pool_clip),
    F.adaptive_max_pool2d: _clip_op(ops.adaptive_max_pool_clip, indices_at=2),
    F.interpolate: _clip_op(ops.interpolate_frames),
    F.pad: _clip_op(ops.pad_frames),
}
METHOD_RULES: dict[object, Rule] = {
    **dict.fromkeys(_ELEMENTWISE_METHODS, elementwise),
    **dict.fromkeys(_REDUCTIONS, reduction),
    "chunk": _dim_rule(2, "dim", 0, "tuple"),
    "split": _dim_rule(2, "dim", 0, "tuple"),
    "softmax": _dim_rule(1, "dim", None),
    "log_softmax": _dim_rule(1, "dim", None),
    "permute": permute,
    "transpose": transpose,
    "flatten": flatten,
    "view": reshape,
    "reshape": reshape,
    "unsqueeze": unsqueeze,
    "squeeze": squeeze,
    "size": size,
    "dim": rank,
}

RULES = RuleSet(FUNCTION_RULES, METHOD_RULES, module_rule)
