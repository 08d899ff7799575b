"""Video forms of 2D functional operations, called by the rewritten graphs of :mod:`.graph`.

Each function takes the arguments of the 2D operation it replaces (same names, same defaults) and a clip
tensor ``(N, C, T, H, W)`` where the 2D operation took ``(N, C, H, W)``. Pooling keeps time: kernel, stride
and padding are 1, 1 and 0 along ``T``, so every frame is pooled as the 2D operation pools an image; adaptive
pooling pools time to one step, as global pooling of a video network does. Resampling and padding act on each
frame (time folded into the batch), never across frames. The graphs import these by qualified name, so they
are top-level functions of this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "adaptive_avg_pool_clip",
    "adaptive_max_pool_clip",
    "align_untimed",
    "avg_pool_clip",
    "flatten_clip",
    "image_rank",
    "interpolate_frames",
    "max_pool_clip",
    "pad_frames",
    "pair",
    "reshape_before_time",
]


def pair(value: int | Sequence[int] | None, default: int | None = None) -> tuple[int, int] | None:
    """``3 -> (3, 3)``, ``(3, 2) -> (3, 2)``, ``None -> (default, default)`` (or ``None``)."""
    if value is None:
        return None if default is None else (default, default)
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _adaptive_size(output_size: int | Sequence[int | None]) -> tuple[int | None, ...]:
    if isinstance(output_size, int):
        return (1, output_size, output_size)
    sizes = tuple(output_size)
    return (1, sizes[0], sizes[0]) if len(sizes) == 1 else (1, *sizes)


def max_pool_clip(
    input: Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """``F.max_pool2d`` of every frame: ``(N, C, T, H, W) -> (N, C, T, H', W')``."""
    kernel = pair(kernel_size)
    step = pair(stride) if stride is not None and stride != [] else kernel
    return F.max_pool3d(
        input,
        (1, *kernel),  # type: ignore[misc]
        (1, *step),  # type: ignore[misc]
        (0, *pair(padding)),  # type: ignore[misc]
        (1, *pair(dilation)),  # type: ignore[misc]
        ceil_mode=ceil_mode,
        return_indices=return_indices,
    )


def avg_pool_clip(
    input: Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """``F.avg_pool2d`` of every frame: ``(N, C, T, H, W) -> (N, C, T, H', W')``.

    ``avg_pool3d`` refuses a map smaller than the kernel before padding, which ``avg_pool2d`` accepts
    (Inception's 3 x 3 / padding 1 pools on 1 x 1 maps): such maps are pooled frame by frame.
    """
    kernel = pair(kernel_size)
    step = pair(stride) if stride is not None and stride != [] else kernel
    if input.shape[-2] < kernel[0] or input.shape[-1] < kernel[1]:  # type: ignore[index]
        frames, t = _per_frame(input)
        pooled = F.avg_pool2d(frames, kernel, step, padding, ceil_mode, count_include_pad, divisor_override)  # type: ignore[arg-type]
        return _back_to_clip(pooled, t)
    return F.avg_pool3d(
        input,
        (1, *kernel),  # type: ignore[misc]
        (1, *step),  # type: ignore[misc]
        (0, *pair(padding)),  # type: ignore[misc]
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def adaptive_avg_pool_clip(input: Tensor, output_size: int | Sequence[int | None]) -> Tensor:
    """``F.adaptive_avg_pool2d`` with time pooled too: ``(N, C, T, H, W) -> (N, C, 1, h, w)``."""
    return F.adaptive_avg_pool3d(input, _adaptive_size(output_size))  # type: ignore[arg-type]


def adaptive_max_pool_clip(
    input: Tensor, output_size: int | Sequence[int | None], return_indices: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``F.adaptive_max_pool2d`` with time pooled too: ``(N, C, T, H, W) -> (N, C, 1, h, w)``."""
    return F.adaptive_max_pool3d(input, _adaptive_size(output_size), return_indices)  # type: ignore[arg-type]


def _per_frame(input: Tensor) -> tuple[Tensor, int]:
    """``(N, C, T, H, W) -> (N * T, C, H, W)`` and ``T``."""
    n, c, t, h, w = input.shape
    return input.transpose(1, 2).reshape(n * t, c, h, w), t


def _back_to_clip(frames: Tensor, t: int) -> Tensor:
    """``(N * T, C, H, W) -> (N, C, T, H, W)``."""
    nt, c, h, w = frames.shape
    return frames.reshape(nt // t, t, c, h, w).transpose(1, 2)


def interpolate_frames(input: Tensor, *args: object, **kwargs: object) -> Tensor:
    """``F.interpolate`` (same arguments) of every frame on its own: ``(N, C, T, H, W) -> (N, C, T, H', W')``."""
    frames, t = _per_frame(input)
    return _back_to_clip(F.interpolate(frames, *args, **kwargs), t)  # type: ignore[arg-type]


def pad_frames(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """``F.pad`` of the last two dimensions of every frame (never of time), ``(N, C, T, H, W)`` in and out."""
    if mode == "constant":
        return F.pad(input, list(pad), mode, value)
    frames, t = _per_frame(input)
    return _back_to_clip(F.pad(frames, list(pad), mode, value), t)


def reshape_before_time(input: Tensor, middle: Sequence[int], tail: int) -> Tensor:
    """Regroup the dimensions between batch and time, keeping batch, time and the last ``tail`` dimensions.

    The video form of a 2D ``view``/``reshape`` that only regroups channels (a channel shuffle):
    ``(N, *a, T, *rest) -> (N, *middle, T, *rest)`` with ``len(rest) == tail``.
    """
    keep = input.shape[input.dim() - tail - 1 :]
    return input.reshape(input.shape[0], *middle, *keep)


def flatten_clip(input: Tensor) -> Tensor:
    """The video form of a 2D ``view(N, -1)`` of a pooled map: ``(N, ...) -> (N, prod(...))``."""
    return input.reshape(input.shape[0], -1)


def image_rank(input: Tensor) -> int:
    """``x.ndim`` / ``x.dim()`` as the 2D code means it: the rank without the time axis (timm asserts
    ``x.ndim == 4`` in its BatchNorm layers)."""
    return input.dim() - 1


def align_untimed(operand: Tensor, from_end: int) -> Tensor:
    """Give a tensor without a time axis (a layer scale ``(C, 1, 1)``) a unit time axis ``from_end`` dims from
    the end, so that it broadcasts against a clip as it broadcast against an image."""
    if operand.dim() < from_end:
        return operand
    return torch.unsqueeze(operand, -from_end)
