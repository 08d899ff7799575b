"""Video GoogLeNets (Inception v1) with 3T or 3D convolutions, laid out like torchvision's 2D ``googlenet``.

Submodule names equal torchvision's (``conv1.conv``, ``conv1.bn``, ``inception3a.branch2.1.conv``,
``aux1.conv.conv``, ``aux1.fc1``, ``aux1.fc2``, ``fc``, ...), so 2D state dict keys map 1:1
(see :mod:`conv3t.models.transfer`).

Architecture (as the paper's research code, see ARCHITECTURE.md):

* every ``k x k`` convolution with ``k > 1`` has temporal depth ``k`` (``conv1`` 7x7x7 / stride 2 / padding 3,
  the 3x3 convolutions 3x3x3 / padding 1), 1x1 convolutions stay 1x1x1; BatchNorm3d with ``eps = 0.001``;
* ``maxpool1`` and ``maxpool2`` pool only in space, ``(1, 3, 3)`` / stride ``(1, 2, 2)``; ``maxpool3`` and
  ``maxpool4`` are 3x3x3 / stride 2 (torchvision's ``maxpool4`` is 2x2 / stride 2; the paper's code uses 3 / 2);
  all with ``ceil_mode=True`` as torchvision; the inception branch pools are 3x3x3 / stride 1 / padding 1;
* the auxiliary heads pool adaptively to ``(1, 2, 3)`` positions (T, H, W), reduce to 128 channels with a 1x1x1
  convolution and flatten to ``128 * 1 * 2 * 3 = 768`` features (the paper's size, which its 5 / 3 average
  pool yields for 30 x 150 x 224 clips), then ``fc1`` 768 -> 1024, ReLU, dropout 0.7, ``fc2`` 1024 -> classes;
* a global adaptive average pool before the final dropout and ``fc``, so any clip size works.

Like torchvision's GoogLeNet, inception branch 3 uses a 3x3 (not 5x5) convolution, which is what its ImageNet
weights contain, and ``Table 1`` of the paper counts.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import torch
from torch import Tensor, nn

from conv3t.models.common import Variant, check_variant, conv_kxk
from conv3t.nn import Conv3T

__all__ = [
    "AUX_POOL_SIZE",
    "BasicConv3d",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "googlenet_3d",
    "googlenet_3t",
    "minimum_clip_size",
]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
GoogLeNetOutputs.__doc__ = """Training-mode output of :class:`GoogLeNet` (torchvision's field names and order).

Fields: ``logits`` (main head), ``aux_logits2`` (head after ``inception4d``), ``aux_logits1`` (head after
``inception4a``), each ``(N, num_classes)``.
"""

AUX_POOL_SIZE: tuple[int, int, int] = (1, 2, 3)
"""Pooled ``(T, H, W)`` positions of the auxiliary heads: ``128 * 1 * 2 * 3 = 768`` features into ``fc1``."""


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _ceil_pool_out(n: int, k: int, s: int) -> int:
    """Output length of a ``ceil_mode=True``, unpadded max-pool, as PyTorch computes it (0 if too small)."""
    out = (n - k + s - 1) // s + 1
    if out > 0 and (out - 1) * s >= n:
        out -= 1
    return max(out, 0)


def minimum_clip_size(stem_temporal_stride: int = 2) -> tuple[int, int, int]:
    """Smallest ``(T, H, W)`` a :class:`GoogLeNet` accepts: its four max-pools need at least one position left.

    ``(7, 31, 31)`` with the default temporal stride 2, ``(4, 31, 31)`` with 1 (ResNets take any size).
    """

    def fits(n: int, spatial: bool) -> bool:
        n = _conv_out(n, 7, 2 if spatial else stem_temporal_stride, 3)
        pools = ((3, 2), (3, 2), (3, 2), (3, 2)) if spatial else ((3, 2), (3, 2))
        for k, s in pools:
            n = _ceil_pool_out(n, k, s)
            if n < 1:
                return False
        return True

    t = next(n for n in range(1, 1000) if fits(n, False))
    h = next(n for n in range(1, 1000) if fits(n, True))
    return t, h, h


class BasicConv3d(nn.Module):
    """Convolution (no bias) + BatchNorm3d (eps 0.001) + ReLU, torchvision's ``BasicConv2d`` in 3D.

    ``kernel_size`` is the spatial size ``k``; the convolution is ``k x k x k`` (see :func:`conv_kxk`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        variant: Variant = "3t",
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = conv_kxk(variant, in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels: ``(N, C, T, H, W) -> (N, sum of outputs, T, H, W)``.

    Branches (torchvision's): 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3x3 max-pool -> 1x1.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        variant: Variant = "3t",
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv3d(in_channels, ch1x1, 1, variant)
        self.branch2 = nn.Sequential(
            BasicConv3d(in_channels, ch3x3red, 1, variant),
            BasicConv3d(ch3x3red, ch3x3, 3, variant, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv3d(in_channels, ch5x5red, 1, variant),
            BasicConv3d(ch5x5red, ch5x5, 3, variant, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool3d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv3d(in_channels, pool_proj, 1, variant),
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))
        return torch.cat(branches, dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: ``(N, C, T, H, W) -> (N, num_classes)``.

    Adaptive average pool to :data:`AUX_POOL_SIZE`, 1x1x1 convolution to 128 channels, flatten (768), ``fc1``
    (768 -> 1024), ReLU, dropout, ``fc2`` (1024 -> classes).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7, variant: Variant = "3t") -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool3d(AUX_POOL_SIZE)
        self.conv = BasicConv3d(in_channels, 128, 1, variant)
        self.fc1 = nn.Linear(128 * math.prod(AUX_POOL_SIZE), 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.conv(self.avgpool(x)), 1)
        x = self.dropout(torch.relu(self.fc1(x)))
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """A video GoogLeNet.

    Args:
        num_classes: size of the classifiers (``fc`` and the auxiliary ``fc2``).
        variant: ``"3t"`` (Conv3T) or ``"3d"`` (Conv3d) for every convolution with a spatial size > 1.
        aux_logits: build the two auxiliary heads (``aux1`` after ``inception4a``, ``aux2`` after
            ``inception4d``). Table 1 of the paper counts them.
        transform_input: map ImageNet-normalised input to the ``[-1, 1]`` scaling that torchvision's ImageNet
            GoogLeNet weights were trained with (torchvision turns this on with its weights). Default
            ``False`` (training from scratch on ImageNet-normalised clips); ``create_model(...,
            pretrained="imagenet")`` turns it on and refuses ``False``, so the input matches the weights.
        dropout: dropout before ``fc``. Default 0.4, the paper's code and the original GoogLeNet
            (torchvision uses 0.2).
        dropout_aux: dropout inside the auxiliary heads (0.7).
        stem_temporal_stride: temporal stride of ``conv1`` (2 as the paper; 1 keeps twice as many time steps).
        init_weights: initialise like torchvision (truncated normal, std 0.01, for convolution and linear
            weights; BatchNorm weight 1, bias 0). ``False`` keeps PyTorch's default initialisation.

    Shape:
        input ``(N, 3, T, H, W)``. In training mode with ``aux_logits`` the output is a
        :class:`GoogLeNetOutputs` of three ``(N, num_classes)`` tensors; otherwise the main logits
        ``(N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        variant: Variant = "3t",
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float = 0.4,
        dropout_aux: float = 0.7,
        stem_temporal_stride: int = 2,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        self.variant = check_variant(variant)
        if stem_temporal_stride not in (1, 2):
            raise ValueError(f"stem_temporal_stride must be 1 or 2, got {stem_temporal_stride}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.stem_temporal_stride = stem_temporal_stride
        v = self.variant

        self.conv1 = BasicConv3d(3, 64, 7, v, stride=(stem_temporal_stride, 2, 2), padding=3)
        self.maxpool1 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)
        self.conv2 = BasicConv3d(64, 64, 1, v)
        self.conv3 = BasicConv3d(64, 192, 3, v, padding=1)
        self.maxpool2 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, v)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, v)
        self.maxpool3 = nn.MaxPool3d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, v)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, v)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, v)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, v)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, v)
        self.maxpool4 = nn.MaxPool3d(3, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, v)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, v)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux, v)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux, v)

        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's GoogLeNet init. Conv3T: only the 2D filter; temporal parameters stay identity.
        for m in self.modules():
            if isinstance(m, nn.Conv3d | Conv3T | nn.Linear):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x: Tensor) -> Tensor:
        if not self.transform_input:
            return x
        # (x * std + mean - 0.5) / 0.5 per channel: ImageNet normalisation -> [-1, 1] scaling.
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
        return (x * std + mean - 0.5) / 0.5

    def forward(self, x: Tensor) -> GoogLeNetOutputs | Tensor:
        if x.dim() != 5:
            raise ValueError(f"GoogLeNet expects a clip batch (N, 3, T, H, W), got shape {tuple(x.shape)}")
        smallest = minimum_clip_size(self.stem_temporal_stride)
        if any(n < m for n, m in zip(x.shape[2:], smallest)):
            raise ValueError(
                f"clip of shape {tuple(x.shape)} is too small for GoogLeNet (stem_temporal_stride="
                f"{self.stem_temporal_stride}): its max-pools need T x H x W of at least {smallest}"
            )
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        with_aux = self.training and self.aux1 is not None and self.aux2 is not None
        aux1 = self.aux1(x) if with_aux else None  # type: ignore[misc]
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None  # type: ignore[misc]
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if with_aux:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits


def googlenet_3t(num_classes: int = 1000, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet with 3TConv filters (the paper's 3T-GoogLeNet). ``kwargs``: see :class:`GoogLeNet`."""
    return GoogLeNet(num_classes=num_classes, variant="3t", **kwargs)


def googlenet_3d(num_classes: int = 1000, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet with full 3D convolutions (the paper's 3D-GoogLeNet). ``kwargs``: see :class:`GoogLeNet`."""
    return GoogLeNet(num_classes=num_classes, variant="3d", **kwargs)
