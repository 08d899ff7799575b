"""Module replacement: each 2D layer type and the video layer it becomes, with its weights transferred.

=========================== ===================================================================================
2D module                   video module (input ``(N, C, T, H, W)``)
=========================== ===================================================================================
``Conv2d`` k x k, k > 1     ``Conv3T`` (kind 3t, identity temporal parameters, the 2D weight as ``K_1``) or an
                            inflated ``Conv3d`` (kind 3d); temporal depth ``time_kernel``, stride 1 and "same"
                            padding in time, so the clip keeps its length
``Conv2d`` 1 x 1            ``Conv3d`` 1 x 1 x 1 (both kinds; a 1 x 1 filter has nothing to warp)
``BatchNorm2d``             ``BatchNorm3d`` (statistics over batch, time and space)
``InstanceNorm2d``          ``InstanceNorm3d``
``MaxPool2d``/``AvgPool2d`` 3D pooling of size, stride 1 and no padding in time: each frame pooled on its own
``Adaptive*Pool2d``         3D adaptive pooling to one time step (global pooling pools over time too)
``Dropout2d``               ``Dropout3d``
``*Pad2d``                  ``*Pad3d`` without temporal padding
``Upsample``, PixelShuffle  :class:`Frames`: the 2D module applied to every frame
=========================== ===================================================================================

Temporal padding: ``"zeros"`` (as ``Conv3d``) or ``"replicate"`` (the first and last frames repeated). With
``"replicate"``, or a 2D ``padding_mode`` other than zeros, the time axis is padded separately
(:class:`TimePaddedConv3T`, :class:`TimePaddedConv3d`): the spatial padding keeps the 2D layer's mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from conv3t.models.conversion.ops import avg_pool_clip, pair
from conv3t.models.conversion.report import ConversionError, ParameterFate
from conv3t.nn import Conv3T
from conv3t.nn.time_padded import TimePaddedConv3d, TimePaddedConv3T

__all__ = [
    "KINDS",
    "TEMPORAL_PADDINGS",
    "ClipAvgPool",
    "ConversionSettings",
    "Frames",
    "TimePaddedConv3T",
    "TimePaddedConv3d",
    "conv_parameter_counts",
    "refused_layer",
    "video_module",
]

KINDS: tuple[str, ...] = ("3t", "3d")
TEMPORAL_PADDINGS: tuple[str, ...] = ("zeros", "replicate")

# Layers that mean the model is not a 2D image network (or already a video one).
_REFUSED = (
    nn.Conv1d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose3d,
    nn.BatchNorm1d,
    nn.BatchNorm3d,
    nn.MaxPool1d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm3d,
    Conv3T,
)
_PER_FRAME = (nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle)


@dataclass(frozen=True)
class ConversionSettings:
    """The options of :func:`~conv3t.models.convert` that shape the video layers."""

    kind: str = "3t"
    inflate: str = "repeat"
    time_kernel: int = 3
    temporal_padding: str = "zeros"


class ClipAvgPool(nn.AvgPool3d):
    """``nn.AvgPool3d`` with temporal size 1 that, like ``nn.AvgPool2d``, accepts maps smaller than the kernel
    (see :func:`~conv3t.models.conversion.ops.avg_pool_clip`)."""

    def forward(self, x: Tensor) -> Tensor:
        k, s, p = self.kernel_size, self.stride, self.padding
        return avg_pool_clip(x, k[1:], s[1:], p[1:], self.ceil_mode, self.count_include_pad, self.divisor_override)  # type: ignore[index]


class Frames(nn.Module):
    """Apply a 2D module to every frame of a clip: ``(N, C, T, H, W) -> (N, C', T, H', W')``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, h, w = x.shape
        out = self.module(x.transpose(1, 2).reshape(n * t, c, h, w))
        return out.reshape(n, t, *out.shape[1:]).transpose(1, 2)


def refused_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a 1D or 3D layer (the model is no 2D image network)."""
    return isinstance(module, _REFUSED)


def _spatial_padding(conv: nn.Conv2d, path: str) -> tuple[int, int]:
    if not isinstance(conv.padding, str):
        return pair(conv.padding)  # type: ignore[return-value]
    if conv.padding == "valid":
        return (0, 0)
    totals = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
    if any(t % 2 for t in totals):
        raise ConversionError(f"{path} ({conv}): padding='same' with an even kernel extent pads asymmetrically")
    return (totals[0] // 2, totals[1] // 2)


def _video_conv(conv: nn.Conv2d, path: str, settings: ConversionSettings) -> nn.Module:
    kh, kw = conv.kernel_size
    depth = 1 if (kh, kw) == (1, 1) else settings.time_kernel
    ph, pw = _spatial_padding(conv, path)
    pt = (depth - 1) // 2
    args = (conv.in_channels, conv.out_channels, (depth, kh, kw))
    kwargs: dict[str, object] = {
        "stride": (1, *conv.stride),
        "dilation": (1, *conv.dilation),
        "groups": conv.groups,
        "bias": conv.bias is not None,
        "padding_mode": conv.padding_mode,
        "device": conv.weight.device,
        "dtype": conv.weight.dtype,
    }
    use_3t = settings.kind == "3t" and (kh, kw) != (1, 1)
    if pt == 0 or (settings.temporal_padding == "zeros" and conv.padding_mode == "zeros"):
        cls: type[nn.Module] = Conv3T if use_3t else nn.Conv3d
        return cls(*args, padding=(pt, ph, pw), **kwargs)
    cls = TimePaddedConv3T if use_3t else TimePaddedConv3d
    return cls(*args, padding=(0, ph, pw), time_padding=pt, time_padding_mode=settings.temporal_padding, **kwargs)


def _adaptive(size: object) -> tuple[object, ...]:
    if isinstance(size, int) or size is None:
        return (1, size, size)
    sizes = tuple(size)  # type: ignore[arg-type]
    return (1, sizes[0], sizes[0]) if len(sizes) == 1 else (1, *sizes)


def _video_pool(m: nn.Module) -> nn.Module | None:
    if isinstance(m, nn.MaxPool2d):
        k, s = pair(m.kernel_size), pair(m.stride if m.stride else m.kernel_size)
        p, d = pair(m.padding), pair(m.dilation)
        return nn.MaxPool3d((1, *k), (1, *s), (0, *p), (1, *d), m.return_indices, m.ceil_mode)  # type: ignore[misc]
    if isinstance(m, nn.AvgPool2d):
        k, s, p = pair(m.kernel_size), pair(m.stride if m.stride else m.kernel_size), pair(m.padding)
        return ClipAvgPool((1, *k), (1, *s), (0, *p), m.ceil_mode, m.count_include_pad, m.divisor_override)  # type: ignore[misc]
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d(_adaptive(m.output_size))  # type: ignore[arg-type]
    if isinstance(m, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveMaxPool3d(_adaptive(m.output_size), m.return_indices)  # type: ignore[arg-type]
    return None


def _video_simple(m: nn.Module) -> nn.Module | None:
    """Normalisation, dropout and padding layers (same parameters, 3D form)."""
    if isinstance(m, nn.BatchNorm2d):
        return nn.BatchNorm3d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    if isinstance(m, nn.InstanceNorm2d):
        return nn.InstanceNorm3d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    if isinstance(m, nn.Dropout2d):
        return nn.Dropout3d(m.p, m.inplace)
    pads = {
        nn.ZeroPad2d: lambda p: nn.ZeroPad3d(p),
        nn.ConstantPad2d: lambda p: nn.ConstantPad3d(p, m.value),
        nn.ReflectionPad2d: lambda p: nn.ReflectionPad3d(p),
        nn.ReplicationPad2d: lambda p: nn.ReplicationPad3d(p),
    }
    if type(m) in pads:
        return pads[type(m)]((*m.padding, 0, 0))
    if isinstance(m, _PER_FRAME):
        return Frames(m)
    return None


def replaceable(module: nn.Module) -> bool:
    """Whether :func:`video_module` has a video form for ``module``. A subclass must keep its base's
    ``forward`` (timm's ``BatchNormAct2d`` has its own: it is traced into instead, and its ``F.batch_norm``
    works on clips as it is; a Conv2d subclass with its own ``forward`` ends in a refused ``F.conv2d``)."""
    if isinstance(module, nn.Conv2d):
        return type(module).forward is nn.Conv2d.forward
    if isinstance(module, nn.BatchNorm2d | nn.InstanceNorm2d):
        return type(module).forward in (nn.BatchNorm2d.forward, nn.InstanceNorm2d.forward)
    return _video_pool(module) is not None or _video_simple(module) is not None


def video_module(module: nn.Module, path: str, settings: ConversionSettings) -> tuple[nn.Module, list[ParameterFate]]:
    """The video form of a 2D ``module`` at ``path`` with its weights transferred, and the fate of each tensor.

    Raises:
        ConversionError: ``module`` has no video form (the caller checks :func:`replaceable` first).
    """
    if isinstance(module, nn.Conv2d):
        video = _video_conv(module, path, settings)
    else:
        found = _video_pool(module) or _video_simple(module)
        if found is None:
            raise ConversionError(f"{path}: no video form for {type(module).__name__}")
        video = found
    fates = _transfer(module, video, path, settings) if not isinstance(video, Frames) else []
    video.train(module.training)
    return video, fates


@torch.no_grad()
def _transfer(src: nn.Module, dst: nn.Module, path: str, settings: ConversionSettings) -> list[ParameterFate]:
    prefix = f"{path}." if path else ""
    fates = []
    target = dict(dst.named_parameters(recurse=False)) | dict(dst.named_buffers(recurse=False))
    for name, value in [*src.named_parameters(recurse=False), *src.named_buffers(recurse=False)]:
        out = target[name]
        how = "copied"
        if isinstance(dst, Conv3T) and name == "weight":
            depth = dst.temporal_depth
            out.copy_(value / depth if settings.inflate == "mean" else value)
            how = "2d filter"
        elif isinstance(dst, nn.Conv3d) and name == "weight":
            depth = out.shape[2]
            kernel = value.unsqueeze(2).expand_as(out)
            out.copy_(kernel / depth if settings.inflate == "mean" else kernel)
            how = "inflated" if depth > 1 else "unsqueezed"
        else:
            out.copy_(value)
        fates.append(ParameterFate(prefix + name, tuple(value.shape), tuple(out.shape), how))
    return fates


def conv_parameter_counts(conv: nn.Conv2d, time_kernel: int) -> tuple[int, int]:
    """Parameters of the 3T and of the 3D form of ``conv`` (bias included)."""
    bias = conv.out_channels if conv.bias is not None else 0
    weight = conv.weight.numel()
    if tuple(conv.kernel_size) == (1, 1):
        return weight + bias, weight + bias
    return weight + 4 * conv.out_channels * (time_kernel - 1) + bias, weight * time_kernel + bias
