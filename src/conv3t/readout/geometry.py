"""Where a model's Conv3T layers sit: kernel sizes, input sizes and cumulative strides.

Public API::

    layer_geometry(model: nn.Module, input_size: tuple[int, int, int] | None = (32, 256, 256),
                   in_channels: int | None = None) -> pandas.DataFrame
    slices_meeting_frames(layer: Conv3T, frames: float) -> numpy.ndarray

The strides convert the temporal parameters' kernel-pixel readings into input-image pixels and input frames
(:func:`conv3t.readout.temporal_parameters` uses them). They are measured, not inferred from module
attributes: forward hooks on every Conv3T record the spatial/temporal size of its input during one forward pass
of a dummy clip of ``input_size`` (T, H, W), run on the ``meta`` device (no memory, no compute; falls back to a
real CPU pass without gradients if an op lacks a meta kernel). The stride of a layer is then ``H / H_in`` and
``W / W_in`` (and ``T / T_in``); choose an ``input_size`` divisible by the network's total stride so the ratios
are exact (the default 32 x 256 x 256 is, for ResNet and GoogLeNet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from conv3t.nn import Conv3T, conv3t_layers

__all__ = ["GEOMETRY_COLUMNS", "layer_geometry", "slices_meeting_frames"]

GEOMETRY_COLUMNS = (
    "layer",
    "kernel_d",
    "kernel_h",
    "kernel_w",
    "input_t",
    "input_h",
    "input_w",
    "image_stride_x",
    "image_stride_y",
    "frames_per_step",
)


def _candidate_in_channels(model: nn.Module) -> list[int]:
    """Distinct ``in_channels`` of the model's modules, in registration order (the stem is usually first)."""
    found = [m.in_channels for _, m in model.named_modules() if isinstance(getattr(m, "in_channels", None), int)]
    if not found:
        raise ValueError("in_channels: cannot infer the model's input channels (no module has `in_channels`); pass it")
    return list(dict.fromkeys(found))


def _record_input_sizes(
    model: nn.Module, input_size: Sequence[int], channel_candidates: Sequence[int]
) -> dict[str, tuple[int, ...]]:
    """Run one dummy forward pass and return ``{layer name: (T_in, H_in, W_in)}`` for every Conv3T.

    The pass runs on the ``meta`` device, trying each candidate channel count until one goes through; if none
    does (an op without a meta kernel, or a size the model rejects), it runs once for real on the model's
    device without gradients, with the first candidate, and a failure there is reported.
    """
    sizes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, module in conv3t_layers(model):

        def hook(_m: nn.Module, args: tuple, _name: str = name) -> None:
            if _name not in sizes:  # a module reused in forward keeps its first call
                sizes[_name] = tuple(int(v) for v in args[0].shape[-3:])

        handles.append(module.register_forward_pre_hook(hook))
    was_training = {m: m.training for m in model.modules()}
    model.eval()  # no auxiliary heads, no batch statistics
    try:
        meta = {n: torch.empty_like(t, device="meta") for n, t in model.named_parameters()}
        meta.update({n: torch.empty_like(t, device="meta") for n, t in model.named_buffers()})
        for channels in channel_candidates:
            sizes.clear()
            try:
                functional_call(model, meta, (torch.empty(1, channels, *input_size, device="meta"),), strict=False)
                return sizes
            except Exception:  # wrong channel count, an op without a meta kernel, or a bad size
                continue
        sizes.clear()
        ref = next(iter(model.parameters()), None)
        dtype = ref.dtype if ref is not None else torch.float32
        device = ref.device if ref is not None else torch.device("cpu")
        channels = channel_candidates[0]
        try:
            with torch.no_grad():
                model(torch.zeros(1, channels, *input_size, dtype=dtype, device=device))
        except Exception as err:
            raise ValueError(
                f"input_size={tuple(input_size)}, in_channels={channels}: the dummy forward pass that "
                f"measures the layers' strides failed ({err}); pass an input_size (and in_channels) the model "
                "accepts"
            ) from err
    finally:
        for h in handles:
            h.remove()
        for m, flag in was_training.items():
            m.training = flag
    return sizes


def layer_geometry(
    model: nn.Module,
    input_size: tuple[int, int, int] | None = (32, 256, 256),
    in_channels: int | None = None,
) -> pd.DataFrame:
    """One row per Conv3T layer: kernel size, input size and how kernel pixels/slices map to the input clip.

    Args:
        model: any module containing ``Conv3T`` layers; its input is ``(N, C, T, H, W)``.
        input_size: ``(T, H, W)`` of the dummy clip used to measure the strides, or None to skip the
            measurement (stride columns NaN).
        in_channels: ``C`` of the dummy clip; default: try the ``in_channels`` of the model's modules in
            registration order until the pass goes through.

    Returns:
        DataFrame with columns ``layer, kernel_d, kernel_h, kernel_w, input_t, input_h, input_w,
        image_stride_x, image_stride_y, frames_per_step``; ``image_stride_*`` are input-image pixels per
        kernel pixel (cumulative stride x dilation), ``frames_per_step`` input frames per kernel slice.
        Layers the dummy pass did not reach have NaN there.
    """
    layers = conv3t_layers(model)
    sizes: dict[str, tuple[int, ...]] = {}
    if input_size is not None and layers:
        if len(input_size) != 3 or any(int(v) < 1 for v in input_size):
            raise ValueError(f"input_size must be (T, H, W) of positive ints or None, got {input_size!r}")
        candidates = [in_channels] if in_channels is not None else _candidate_in_channels(model)
        sizes = _record_input_sizes(model, [int(v) for v in input_size], candidates)
    rows = []
    for name, m in layers:
        d, kh, kw = m.kernel_size
        dil_t, dil_y, dil_x = m.dilation
        row: dict[str, object] = {"layer": name, "kernel_d": d, "kernel_h": kh, "kernel_w": kw}
        if name in sizes and input_size is not None:
            t_in, h_in, w_in = sizes[name]
            row.update(
                input_t=t_in,
                input_h=h_in,
                input_w=w_in,
                image_stride_x=input_size[2] / w_in * dil_x,
                image_stride_y=input_size[1] / h_in * dil_y,
                frames_per_step=input_size[0] / t_in * dil_t,
            )
        else:
            row.update({c: math.nan for c in GEOMETRY_COLUMNS[4:]})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(GEOMETRY_COLUMNS))


def slices_meeting_frames(layer: Conv3T, frames: float) -> np.ndarray:
    """``(D,)`` bool: which kernel slices ever multiply a real frame of a ``frames``-frame input.

    With zero padding, slices that only ever meet padded frames contribute nothing (e.g. the outer slices of
    a 3-deep kernel on a 1-frame input). All True when ``frames`` is unknown (NaN) or the padding is not zeros.
    """
    depth, stride, dilation = layer.kernel_size[0], layer.stride[0], layer.dilation[0]
    if not np.isfinite(frames) or layer.padding_mode != "zeros":
        return np.ones(depth, dtype=bool)
    if layer.padding == "valid":
        before = after = 0
    elif layer.padding == "same":
        before = dilation * (depth - 1) // 2
        after = dilation * (depth - 1) - before
    else:
        before = after = int(layer.padding[0])  # type: ignore[index]
    frames = int(frames)
    outputs = (frames + before + after - dilation * (depth - 1) - 1) // stride + 1
    starts = np.arange(max(outputs, 0)) * stride - before  # input frame met by slice 0 for each output frame
    offsets = starts[:, None] + np.arange(depth)[None, :] * dilation
    return ((offsets >= 0) & (offsets < frames)).any(axis=0)
