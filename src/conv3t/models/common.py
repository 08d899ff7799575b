"""Building blocks shared by the video ResNets and GoogLeNets: the k x k x k convolution of either variant.

A model comes in two variants that differ only in how a spatial ``k x k`` filter with ``k > 1`` becomes a
spatio-temporal one of temporal depth ``k``:

* ``"3t"``: :class:`conv3t.Conv3T`, one 2D filter plus ``4 (k - 1)`` temporal parameters per output channel;
* ``"3d"``: a plain :class:`torch.nn.Conv3d` with a full ``k x k x k`` kernel.

``1 x 1`` convolutions are ``1 x 1 x 1`` :class:`torch.nn.Conv3d` in both variants.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

from conv3t.nn import Conv3T

__all__ = ["VARIANTS", "Variant", "check_variant", "conv_kxk", "kaiming_normal_fan_out_", "kernel_numel"]

Variant = Literal["3t", "3d"]
VARIANTS: tuple[str, ...] = ("3t", "3d")


def check_variant(variant: str) -> Variant:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant  # type: ignore[return-value]


def conv_kxk(
    variant: Variant,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    bias: bool = False,
) -> nn.Module:
    """A ``k x k x k`` convolution (temporal depth = spatial size), ``(N, in, T, H, W) -> (N, out, T', H', W')``.

    ``kernel_size == 1`` always gives ``nn.Conv3d`` (a 1 x 1 filter cannot be warped); otherwise the variant
    decides between :class:`~conv3t.Conv3T` (``"3t"``) and :class:`torch.nn.Conv3d` (``"3d"``). ``stride`` and
    ``padding`` are ints (same in time and space) or ``(T, H, W)`` tuples.
    """
    variant = check_variant(variant)
    if kernel_size == 1 or variant == "3d":
        return nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
    return Conv3T(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)


def kernel_numel(conv: nn.Module) -> int:
    """Number of entries of one output channel's 3D kernel, ``in/groups * D * kH * kW`` (Conv3T or Conv3d)."""
    if isinstance(conv, Conv3T):
        return conv.weight.shape[1] * math.prod(conv.kernel_size)
    if isinstance(conv, nn.Conv3d):
        return conv.weight[0].numel()
    raise TypeError(f"expected Conv3T or nn.Conv3d, got {type(conv).__name__}")


def kaiming_normal_fan_out_(conv: nn.Module) -> None:
    """He-normal init with ``fan_out`` for a Conv3T's 2D filter or a Conv3d's kernel (torchvision's ResNet init).

    For a :class:`~conv3t.Conv3T` the fan-out is that of the generated 3D kernel, ``out * D * kH * kW``, so both
    variants start with the same weight scale. Temporal parameters are not touched (they stay identity).
    """
    fan_out = conv.weight.shape[0] * kernel_numel(conv) // conv.weight.shape[1]
    std = math.sqrt(2.0) / math.sqrt(fan_out)
    nn.init.normal_(conv.weight, 0.0, std)
