"""Convolutions whose time axis is padded on its own, before the convolution pads height and width.

:func:`~conv3t.models.convert` needs them for ``temporal_padding="replicate"`` (the first and last frames
repeated) and for 2D layers whose ``padding_mode`` is not zeros: ``Conv3d`` pads all three axes in one mode.
They live here, below ``conv3t.models``, so that :func:`conv3t.fold` can turn a :class:`TimePaddedConv3T`
into the matching :class:`TimePaddedConv3d`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.nn.conv3t import Conv3T

__all__ = ["TimePaddedConv3T", "TimePaddedConv3d", "pad_time"]


class _TimePadding:
    """Pads the time axis on its own (``time_padding`` frames each side, mode ``time_padding_mode``) before the
    convolution it is mixed into, which pads only height and width (in its ``padding_mode``)."""

    def __init__(self, *args: object, time_padding: int, time_padding_mode: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.time_padding = time_padding
        self.time_padding_mode = time_padding_mode

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(pad_time(x, self.time_padding, self.time_padding_mode))  # type: ignore[misc]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, time_padding={self.time_padding}, time_padding_mode={self.time_padding_mode!r}"  # type: ignore[misc]


class TimePaddedConv3T(_TimePadding, Conv3T):
    """A :class:`~conv3t.Conv3T` whose time axis is padded on its own (see :class:`_TimePadding`). Shapes as
    ``Conv3T``."""


class TimePaddedConv3d(_TimePadding, nn.Conv3d):
    """:class:`torch.nn.Conv3d` with the time axis padded on its own, as :class:`TimePaddedConv3T`."""


def pad_time(x: Tensor, amount: int, mode: str) -> Tensor:
    """Pad dimension -3 (time) of ``(N, C, T, H, W)`` by ``amount`` frames each side (``"zeros"`` or an
    ``F.pad`` mode such as ``"replicate"``)."""
    if amount == 0:
        return x
    return F.pad(x, (0, 0, 0, 0, amount, amount), mode="constant" if mode == "zeros" else mode)
