"""Video GoogLeNets (Inception v1) with 3T or 3D convolutions, laid out like torchvision's 2D ``googlenet``.

Submodule names equal torchvision's (``conv1.conv``, ``conv1.bn``, ``inception3a.branch2.1.conv``,
``aux1.conv.conv``, ``aux1.fc1``, ``aux1.fc2``, ``fc``, ...), so 2D state dict keys map 1:1
(see :mod:`conv3t.models.transfer`).

Architecture (as the paper's research code, see ARCHITECTURE.md):

* every ``k x k`` convolution with ``k > 1`` has temporal depth ``k`` (``conv1`` 7x7x7 / stride 2 / padding 3,
  the 3x3 convolutions 3x3x3 / padding 1), 1x1 convolutions stay 1x1x1;
* ``maxpool1`` and ``maxpool2`` pool only in space, ``(1, 3, 3)`` / stride ``(1, 2, 2)``; ``maxpool3`` and
  ``maxpool4`` are 3x3x3 / stride 2 (torchvision's ``maxpool4`` is 2x2 / stride 2; the paper's code uses 3 / 2);
  the inception branch pools are 3x3x3 / stride 1 / padding 1;
* the auxiliary heads pool to ``(1, 2, 3)`` positions (T, H, W), reduce to 128 channels with a 1x1x1
  convolution and flatten to ``128 * 1 * 2 * 3 = 768`` features, then ``fc1`` 768 -> 1024, ReLU, dropout 0.7,
  ``fc2`` 1024 -> classes;
* a global adaptive average pool before the final dropout and ``fc``.

Two styles (:data:`STYLES`) share these layers and parameter counts and differ in three settings that change
the logits of a trained network completely (see :class:`GoogLeNetStyle`):

============================ ==================================== ======================================
setting                      ``"torchvision"`` (default)          ``"authors"`` (redsphinx/3tconv)
============================ ==================================== ======================================
BatchNorm3d ``eps``          0.001 (torchvision's GoogLeNet)      1e-5 (PyTorch's default)
``maxpool1`` .. ``maxpool4`` ``ceil_mode=True``: sizes rounded up floor: 55 wide, not 56, at 150 x 224
auxiliary pooling            adaptive to ``(1, 2, 3)``: any clip  average 5x5x5 / stride 3: ``fc1``'s 768
                                                                  inputs fit only 30 x 150 x 224 and
                                                                  30 x 168 x 224 clips (training mode)
============================ ==================================== ======================================

The paper's numbers come from the authors' style (``configs/paper/`` and
:func:`conv3t.models.load_authors_checkpoint` use it); the default stays ``"torchvision"`` because it trains at
any clip size, its BatchNorm ``eps`` fits torchvision's ImageNet statistics, and every model exported before
the setting existed was built that way (``model.json`` records the style; see docs/training.md).

Like torchvision's GoogLeNet, inception branch 3 uses a 3x3 (not 5x5) convolution, which is what its ImageNet
weights contain, and ``Table 1`` of the paper counts.
"""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from conv3t.models.common import Variant, check_variant, conv_kxk
from conv3t.nn import Conv3T

__all__ = [
    "AUX_POOL_SIZE",
    "STYLES",
    "BasicConv3d",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "GoogLeNetStyle",
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


Style = Literal["torchvision", "authors"]
STYLES: tuple[str, ...] = ("torchvision", "authors")


@dataclass(frozen=True)
class GoogLeNetStyle:
    """The settings in which the authors' GoogLeNet differs from ours (no parameter count changes).

    Attributes:
        bn_eps: BatchNorm3d ``eps``.
        ceil_mode: whether ``maxpool1`` .. ``maxpool4`` round their output size up (else down).
        aux_pool: ``None`` pools the auxiliary heads adaptively to :data:`AUX_POOL_SIZE`; ``(k, s)`` uses an
            average pool of ``k x k x k`` at stride ``s`` (unpadded), whose output must then be
            :data:`AUX_POOL_SIZE` for ``fc1``.
    """

    bn_eps: float
    ceil_mode: bool
    aux_pool: tuple[int, int] | None

    @staticmethod
    def named(style: str) -> GoogLeNetStyle:
        """The settings of ``"torchvision"`` or ``"authors"``; :class:`ValueError` for anything else."""
        if style == "torchvision":
            return GoogLeNetStyle(bn_eps=0.001, ceil_mode=True, aux_pool=None)
        if style == "authors":
            # models/googlenet.py of redsphinx/3tconv: BatchNorm3d() defaults, MaxPool3d() defaults (floor),
            # AvgPool3d(kernel_size=5, stride=3) before the auxiliary 1x1 convolutions.
            return GoogLeNetStyle(bn_eps=1e-5, ceil_mode=False, aux_pool=(5, 3))
        raise ValueError(f"GoogLeNet style must be one of {STYLES}, got {style!r}")


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _floor_pool_out(n: int, k: int, s: int) -> int:
    """Output length of an unpadded, ``ceil_mode=False`` pool (0 if too small)."""
    return max((n - k) // s + 1, 0) if n >= k else 0


def _ceil_pool_out(n: int, k: int, s: int) -> int:
    """Output length of a ``ceil_mode=True``, unpadded max-pool, as PyTorch computes it (0 if too small)."""
    out = (n - k + s - 1) // s + 1
    if out > 0 and (out - 1) * s >= n:
        out -= 1
    return max(out, 0)


def minimum_clip_size(stem_temporal_stride: int = 2, style: str = "torchvision") -> tuple[int, int, int]:
    """Smallest ``(T, H, W)`` a :class:`GoogLeNet` accepts: its four max-pools need at least one position left.

    ``(7, 31, 31)`` with the default temporal stride 2, ``(4, 31, 31)`` with 1; the authors' style rounds down
    and needs ``(13, 61, 61)`` / ``(7, 61, 61)`` (ResNets take any size).
    """
    pool_out = _ceil_pool_out if GoogLeNetStyle.named(style).ceil_mode else _floor_pool_out

    def fits(n: int, spatial: bool) -> bool:
        n = _conv_out(n, 7, 2 if spatial else stem_temporal_stride, 3)
        pools = ((3, 2), (3, 2), (3, 2), (3, 2)) if spatial else ((3, 2), (3, 2))
        for k, s in pools:
            n = pool_out(n, k, s)
            if n < 1:
                return False
        return True

    t = next(n for n in range(1, 1000) if fits(n, False))
    h = next(n for n in range(1, 1000) if fits(n, True))
    return t, h, h


class BasicConv3d(nn.Module):
    """Convolution (no bias) + BatchNorm3d + ReLU, torchvision's ``BasicConv2d`` in 3D.

    ``kernel_size`` is the spatial size ``k``; the convolution is ``k x k x k`` (see :func:`conv_kxk`).
    ``bn_eps``: 0.001 as torchvision (the authors' code: 1e-5).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        variant: Variant = "3t",
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
        bn_eps: float = 0.001,
    ) -> None:
        super().__init__()
        self.conv = conv_kxk(variant, in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.bn = nn.BatchNorm3d(out_channels, eps=bn_eps)

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
        bn_eps: float = 0.001,
    ) -> None:
        super().__init__()
        eps = {"bn_eps": bn_eps}
        self.branch1 = BasicConv3d(in_channels, ch1x1, 1, variant, **eps)
        self.branch2 = nn.Sequential(
            BasicConv3d(in_channels, ch3x3red, 1, variant, **eps),
            BasicConv3d(ch3x3red, ch3x3, 3, variant, padding=1, **eps),
        )
        self.branch3 = nn.Sequential(
            BasicConv3d(in_channels, ch5x5red, 1, variant, **eps),
            BasicConv3d(ch5x5red, ch5x5, 3, variant, padding=1, **eps),
        )
        # stride 1, padding 1: the same size whatever the rounding
        self.branch4 = nn.Sequential(
            nn.MaxPool3d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv3d(in_channels, pool_proj, 1, variant, **eps),
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))
        return torch.cat(branches, dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: ``(N, C, T, H, W) -> (N, num_classes)``.

    Average pool to :data:`AUX_POOL_SIZE` (adaptive, or the authors' fixed 5x5x5 / stride 3 window, see
    :class:`GoogLeNetStyle`), 1x1x1 convolution to 128 channels, flatten (768), ``fc1`` (768 -> 1024), ReLU,
    dropout, ``fc2`` (1024 -> classes).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        dropout: float = 0.7,
        variant: Variant = "3t",
        style: GoogLeNetStyle | None = None,
    ) -> None:
        super().__init__()
        style = style or GoogLeNetStyle.named("torchvision")
        self.avgpool: nn.Module
        if style.aux_pool is None:
            self.avgpool = nn.AdaptiveAvgPool3d(AUX_POOL_SIZE)
        else:
            self.avgpool = nn.AvgPool3d(kernel_size=style.aux_pool[0], stride=style.aux_pool[1])
        self.conv = BasicConv3d(in_channels, 128, 1, variant, bn_eps=style.bn_eps)
        self.fc1 = nn.Linear(128 * math.prod(AUX_POOL_SIZE), 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.avgpool, nn.AvgPool3d):
            # the authors' fixed window fits only 30 x 150 x 224 and 30 x 168 x 224 clips
            k, s = self.avgpool.kernel_size, self.avgpool.stride
            pooled = tuple(_floor_pool_out(n, k, s) for n in x.shape[2:])  # type: ignore[arg-type]
            if pooled != AUX_POOL_SIZE:
                raise ValueError(
                    f"auxiliary head: the authors' {k}x{k}x{k} / stride {s} pooling gives {pooled} positions "
                    f"for features of {tuple(x.shape[2:])}, fc1 needs {AUX_POOL_SIZE} (clips of 30 x 150 x 224 "
                    f"or 30 x 168 x 224); use style='torchvision' (adaptive pooling) or aux_logits=False for "
                    f"other clip sizes"
                )
        x = self.avgpool(x)
        x = torch.flatten(self.conv(x), 1)
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
        style: ``"torchvision"`` (default) or ``"authors"``: BatchNorm ``eps``, max-pool rounding and auxiliary
            pooling as torchvision's GoogLeNet or as the authors' code (see :class:`GoogLeNetStyle` and the
            module docstring). Parameter names and counts are the same.

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
        style: Style = "torchvision",
    ) -> None:
        super().__init__()
        self.variant = check_variant(variant)
        settings = GoogLeNetStyle.named(style)
        self.style = style
        if stem_temporal_stride not in (1, 2):
            raise ValueError(f"stem_temporal_stride must be 1 or 2, got {stem_temporal_stride}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.stem_temporal_stride = stem_temporal_stride
        v = self.variant

        eps, ceil = settings.bn_eps, settings.ceil_mode
        self.conv1 = BasicConv3d(3, 64, 7, v, stride=(stem_temporal_stride, 2, 2), padding=3, bn_eps=eps)
        self.maxpool1 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=ceil)
        self.conv2 = BasicConv3d(64, 64, 1, v, bn_eps=eps)
        self.conv3 = BasicConv3d(64, 192, 3, v, padding=1, bn_eps=eps)
        self.maxpool2 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=ceil)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, v, eps)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, v, eps)
        self.maxpool3 = nn.MaxPool3d(3, stride=2, ceil_mode=ceil)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, v, eps)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, v, eps)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, v, eps)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, v, eps)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, v, eps)
        self.maxpool4 = nn.MaxPool3d(3, stride=2, ceil_mode=ceil)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, v, eps)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, v, eps)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux, v, settings)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux, v, settings)

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

    def export_kwargs(self) -> dict[str, object]:
        """Build-time choices an export must record to rebuild this network (read by
        :func:`conv3t.exported.save_exported`): whether it rescales its input (resolved when it is built: True
        for ImageNet weights) and its style (ours or the authors' BatchNorm eps and pooling; the same weights
        give other logits in the other style)."""
        return {"transform_input": bool(self.transform_input), "style": self.style}

    def min_clip_size(self) -> tuple[int, int, int]:
        """The smallest ``(T, H, W)`` this network accepts (see :func:`minimum_clip_size`)."""
        return minimum_clip_size(self.stem_temporal_stride, self.style)

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
        smallest = self.min_clip_size()
        if any(n < m for n, m in zip(x.shape[2:], smallest)):
            raise ValueError(
                f"clip of shape {tuple(x.shape)} is too small for GoogLeNet (stem_temporal_stride="
                f"{self.stem_temporal_stride}, style={self.style!r}): its max-pools need T x H x W of at least "
                f"{smallest}"
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
