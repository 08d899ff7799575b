"""``convert``: any 2D CNN classifier becomes a 3T or 3D video classifier, weights transferred and checked.

Two steps. **Module replacement** (:mod:`.layers`): every ``Conv2d``, ``BatchNorm2d``, pooling, dropout and
padding layer becomes its video form, wherever it sits in the module tree, with its weights. **Graph
rewriting** (:mod:`.rewrite`, :mod:`.rules`): the model's forward is traced with torch.fx (in train and in eval
mode) and every functional operation on an image map is rewritten for clips: ``F.max_pool2d``,
``F.adaptive_avg_pool2d``, ``x.mean((2, 3))``, ``torch.flatten`` after a global pool, ``F.interpolate``,
channel shuffles, channels-last permutes around ``LayerNorm``. Whatever has no rule stops the conversion with
an error naming it and its module path; no network with a silently wrong operation is returned.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from conv3t.models.conversion.layers import (
    KINDS,
    TEMPORAL_PADDINGS,
    ConversionSettings,
    conv_parameter_counts,
    refused_layer,
    replaceable,
    video_module,
)
from conv3t.models.conversion.model import ConvertedModel
from conv3t.models.conversion.ops import pair
from conv3t.models.conversion.report import ConversionError, ConversionReport, ModuleChange, ParameterFate
from conv3t.models.conversion.rewrite import GraphRewriter
from conv3t.models.conversion.rules import RULES
from conv3t.models.conversion.trace import propagate_shapes, shape_of, trace_2d
from conv3t.models.conversion.verify import verify_conversion
from conv3t.nn import Conv3T

__all__ = ["INFLATE_MODES", "convert"]

INFLATE_MODES: tuple[str, ...] = ("repeat", "mean")


def _settings(kind: str, inflate: str, time_kernel: int, temporal_padding: str) -> ConversionSettings:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if inflate not in INFLATE_MODES:
        raise ValueError(f"inflate must be one of {INFLATE_MODES}, got {inflate!r}")
    if isinstance(time_kernel, bool) or not isinstance(time_kernel, int) or time_kernel < 1 or time_kernel % 2 == 0:
        raise ValueError(f"time_kernel must be an odd positive int (the clip keeps its length), got {time_kernel!r}")
    if temporal_padding not in TEMPORAL_PADDINGS:
        raise ValueError(f"temporal_padding must be one of {TEMPORAL_PADDINGS}, got {temporal_padding!r}")
    return ConversionSettings(kind, inflate, time_kernel, temporal_padding)


def _check_model(model: nn.Module) -> int:
    """The input channels of a 2D CNN; errors for anything that is not one."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert expects a torch.nn.Module, got {type(model).__name__}")
    refused = [f"{name or '<model>'} ({type(m).__name__})" for name, m in model.named_modules() if refused_layer(m)]
    if refused:
        shown = ", ".join(refused[:5]) + (" ..." if len(refused) > 5 else "")
        raise ConversionError(
            f"{type(model).__name__} has 1D or 3D layers already: {shown}; convert takes a 2D image network"
        )
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ConversionError(f"{type(model).__name__} has no Conv2d layer: it is not a 2D CNN")


def _check_classifier(gm: fx.GraphModule) -> tuple[int, ...]:
    output = next(n for n in gm.graph.nodes if n.op == "output")
    value = output.args[0]
    shape = shape_of(value) if isinstance(value, fx.Node) else None
    if shape is None or len(shape) != 2:
        what = f"a tensor of shape {shape}" if shape is not None else f"{type(value).__name__}"
        raise ConversionError(
            f"{type(gm).__name__} is not a classifier: in eval mode its forward returns {what}; convert expects "
            f"(N, C, H, W) images -> (N, K) logits"
        )
    return shape


def _used_paths(graphs: dict[str, fx.Graph]) -> set[str]:
    return {str(n.target) for g in graphs.values() for n in g.nodes if n.op in ("call_module", "get_attr")}


def _is_used(key: str, used: set[str]) -> bool:
    parts = key.split(".")
    return any(".".join(parts[:i]) in used for i in range(1, len(parts) + 1))


def _replace_modules(root: nn.Module, settings: ConversionSettings, report: ConversionReport) -> set[str]:
    """Replace every replaceable module in place (shared modules once); returns the replaced paths."""
    done: dict[int, nn.Module] = {}
    paths = set()
    for path, module in list(root.named_modules(remove_duplicate=False)):
        if not path or not replaceable(module):
            continue
        if id(module) not in done:
            video, fates = video_module(module, path, settings)
            done[id(module)] = video
            report.modules.append(ModuleChange(path, type(module).__name__, type(video).__name__))
            report.parameters.extend(fates)
            if isinstance(video, Conv3T):
                report.new_parameters += [f"{path}.{name}" for name in Conv3T.temporal_parameter_names]
        root.set_submodule(path, done[id(module)])
        paths.add(path)
    return paths


def _count(model: nn.Module, settings: ConversionSettings, report: ConversionReport) -> None:
    convs = {id(m): m for m in model.modules() if isinstance(m, nn.Conv2d) and replaceable(m)}
    report.parameters_2d = sum(p.numel() for p in model.parameters())
    extra = [conv_parameter_counts(c, settings.time_kernel) for c in convs.values()]
    plain = sum(c.weight.numel() + (c.bias.numel() if c.bias is not None else 0) for c in convs.values())
    report.parameters_3t = report.parameters_2d - plain + sum(e[0] for e in extra)
    report.parameters_3d = report.parameters_2d - plain + sum(e[1] for e in extra)


def _rewrite(
    source: nn.Module, example: tuple[int, int, int, int], report: ConversionReport
) -> tuple[dict[str, fx.Graph], tuple[int, ...]]:
    """Trace ``source`` in eval and train mode and rewrite both graphs for clips (once when they are equal);
    returns the graphs and the 2D output shape."""
    traced = {mode: trace_2d(source, mode == "train") for mode in ("eval", "train")}
    same = traced["train"].code == traced["eval"].code
    graphs: dict[str, fx.Graph] = {}
    expected: tuple[int, ...] = ()
    for mode, gm in traced.items():
        if mode == "train" and same:
            graphs[mode] = copy.deepcopy(graphs["eval"])
            continue
        propagate_shapes(gm, example, mode)
        if mode == "eval":
            expected = _check_classifier(gm)
        report.ops += GraphRewriter(gm, "train+eval" if same else mode, RULES).run()
        graphs[mode] = gm.graph
    return graphs, expected


def _check_video_shapes(
    video: ConvertedModel, example: tuple[int, ...], expected: tuple[int, ...], frames: int, modes: list[bool]
) -> None:
    """Run the video model on a clip on the meta device in both modes (shapes only, no memory, no compute):
    it must give ``expected``. Meta tensors, not fake ones: Conv3T caches kernel constants per device, and a
    fake tensor claims the real device."""
    from torch.func import functional_call

    tensors = {k: torch.empty_like(v, device="meta") for k, v in video.state_dict(keep_vars=True).items()}
    n, c, h, w = example
    clip = torch.empty(n, c, frames, h, w, device="meta")
    saved = [(m, m.training) for m in video.modules()]
    try:
        for training in modes:
            video.eval()  # the layers in eval mode: BatchNorm's training bookkeeping reads values meta lacks
            video.training = training  # ... and the forward of the mode under test
            try:
                out = functional_call(video, tensors, (clip,), strict=False)
            except Exception as err:
                raise ConversionError(
                    f"the converted {video.source} fails on a clip of shape {(n, c, frames, h, w)} in "
                    f"{'train' if training else 'eval'} mode ({type(err).__name__}: {err}); a conversion bug or "
                    f"an operation whose result depends on the clip length"
                ) from err
            if not training and tuple(out.shape) != expected:
                raise ConversionError(
                    f"the converted {video.source} gives outputs of shape {tuple(out.shape)} on a clip of "
                    f"{frames} frames, the 2D model {expected}: time is not pooled before the classifier"
                )
    finally:
        for module, mode in saved:
            module.training = mode


def convert(
    model: nn.Module,
    kind: str = "3t",
    *,
    inflate: str = "repeat",
    time_kernel: int = 3,
    temporal_padding: str = "zeros",
    check: bool = True,
    image_size: int | tuple[int, int] = 112,
    tolerance: float = 1e-4,
) -> ConvertedModel:
    """Turn a 2D classifier ``(N, C, H, W) -> (N, K)`` into a video classifier ``(N, C, T, H, W) -> (N, K)``.

    The 2D model is not modified (it is copied). Every ``k x k`` convolution (``k > 1``) becomes a
    :class:`~conv3t.Conv3T` (``kind="3t"``: the 2D weight is ``K_1``, the temporal parameters start at
    identity) or an inflated ``nn.Conv3d`` (``kind="3d"``) of temporal depth ``time_kernel``, stride 1 and
    same-length padding in time; 1 x 1 convolutions become 1 x 1 x 1; pooling acts per frame; global pooling
    pools over time too. See :mod:`conv3t.models.conversion` for every rule.

    Args:
        model: a 2D CNN classifier (torchvision, timm, your own), traceable by torch.fx.
        kind: ``"3t"`` or ``"3d"``.
        inflate: ``"repeat"`` (the 2D filter at every time step, as the paper's code) or ``"mean"`` (divided by
            the temporal depth: a clip constant in time gives exactly the 2D activations).
        time_kernel: temporal depth ``D`` of every ``k x k`` convolution (odd: the clip keeps its length).
        temporal_padding: ``"zeros"`` or ``"replicate"`` (the first and last frames repeated); the spatial
            padding stays as in 2D.
        check: run :func:`~conv3t.models.conversion.verify.verify_conversion` on small random constant clips
            and raise :class:`~conv3t.models.conversion.verify.EquivalenceError` if it fails. Other settings
            than ``inflate="mean"``, ``temporal_padding="replicate"`` are checked through a twin converted
            with those (same graph and modules; only the kernel scale and padding mode differ).
        image_size: ``H`` or ``(H, W)`` of the images the check uses and shapes are traced with.
        tolerance: the check's largest error relative to the largest 2D logit.

    Returns:
        A :class:`~conv3t.models.conversion.model.ConvertedModel` (same train/eval mode as ``model``) whose
        ``conversion_report`` lists every module replaced, operation rewritten and parameter transferred.

    Raises:
        ValueError: an unknown ``kind``, ``inflate``, ``temporal_padding`` or a bad ``time_kernel``.
        ConversionError: the model cannot be converted (1D/3D layers, no Conv2d, not a classifier, not
            traceable, an operation with no video form: the message names it and its module path).
        EquivalenceError: ``check=True`` and constant clips do not reproduce the 2D logits.
    """
    settings = _settings(kind, inflate, time_kernel, temporal_padding)
    channels = _check_model(model)
    source = copy.deepcopy(model)
    example = (2, channels, *pair(image_size))  # type: ignore[misc]
    report = ConversionReport(type(model).__name__, kind, inflate, time_kernel, temporal_padding)
    _count(model, settings, report)
    graphs, expected = _rewrite(source, example, report)  # type: ignore[arg-type]
    replaced = _replace_modules(source, settings, report)
    used = _used_paths(graphs)
    fated = {p.key for p in report.parameters}
    for key, value in [*model.state_dict(keep_vars=True).items()]:
        if key not in fated and not _is_used(key, replaced):
            report.parameters.append(ParameterFate(key, tuple(value.shape), tuple(value.shape), "copied"))
    report.parameters = [
        ParameterFate(p.key, p.shape_2d, p.shape_video, p.how, _is_used(p.key, used)) for p in report.parameters
    ]
    video = ConvertedModel(source, graphs, report)
    # the real check runs eval mode; shapes alone for what it does not run (no memory, no arithmetic)
    modes = ([] if check else [False]) + ([True] if video.code["train"] != video.code["eval"] else [])
    _check_video_shapes(video, example, expected, max(2, time_kernel), modes)  # type: ignore[arg-type]
    _check_parameters(video, report)
    if check:
        _self_check(model, video, settings, image_size, tolerance)
    return video


def _check_parameters(video: nn.Module, report: ConversionReport) -> None:
    """Every 2D key has its video counterpart and nothing else is new but the temporal parameters."""
    keys = set(video.state_dict())
    missing = [p.key for p in report.parameters if p.key not in keys]
    unexpected = keys - {p.key for p in report.parameters} - set(report.new_parameters)
    if missing or unexpected:
        raise ConversionError(
            f"conversion bug: 2D keys without video counterpart {missing[:5]}, new keys {sorted(unexpected)[:5]}"
        )


def _self_check(
    model: nn.Module, video: ConvertedModel, settings: ConversionSettings, image_size: object, tolerance: float
) -> None:
    exact = settings.inflate == "mean" and settings.temporal_padding == "replicate"
    twin = video
    if not exact:
        twin = convert(
            model, settings.kind, inflate="mean", time_kernel=settings.time_kernel,
            temporal_padding="replicate", check=False, image_size=image_size,  # type: ignore[arg-type]
        )  # fmt: skip
    result = verify_conversion(model, twin, image_size=image_size, tolerance=tolerance)  # type: ignore[arg-type]
    video.conversion_report.verified = result.sentence() + (
        "" if exact else " (through a twin with inflate='mean', temporal_padding='replicate')"
    )
