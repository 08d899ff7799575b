"""Video ResNets with 3T or 3D convolutions, laid out like torchvision's 2D ``resnet18``.

Submodule names equal torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``,
...), so every key of a 2D torchvision ResNet state dict has exactly one counterpart here
(see :mod:`conv3t.models.transfer`).

Architecture (as the paper's research code): every ``k x k`` convolution with ``k > 1`` gets temporal depth
``k`` and the same stride and padding in time as in space, i.e. ``conv1`` is 7x7x7 / stride 2 / padding 3 and
the 3x3 convolutions are 3x3x3 / padding 1 (stride 2 in time, height and width where torchvision strides).
The 1x1 downsample convolutions stay 1x1x1 with stride 2 in time too, the stem max-pool is 3x3x3 / stride 2 /
padding 1, BatchNorm3d follows every convolution and an adaptive average pool makes any clip size work.

Shapes: input ``(N, 3, T, H, W)``, output logits ``(N, num_classes)``. With the default stem the clip is
downsampled by 32 in height and width and by 16 in time before the global pool (by 8 with
``stem_temporal_stride=1``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from conv3t.models.common import Variant, check_variant, conv_kxk, kaiming_normal_fan_out_
from conv3t.nn import Conv3T

__all__ = ["BasicBlock", "ResNet", "resnet10_3d", "resnet10_3t", "resnet18_3d", "resnet18_3t"]


class BasicBlock(nn.Module):
    """Two 3x3x3 convolutions with a residual connection (torchvision's ``BasicBlock`` in 3D).

    ``(N, inplanes, T, H, W) -> (N, planes, T/s, H/s, W/s)`` for ``stride = s`` (rounded up).
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        variant: Variant = "3t",
    ) -> None:
        super().__init__()
        self.conv1 = conv_kxk(variant, inplanes, planes, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv_kxk(variant, planes, planes, 3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A video ResNet of :class:`BasicBlock` stages.

    Args:
        layers: blocks per stage, ``(2, 2, 2, 2)`` for ResNet18, ``(1, 1, 1, 1)`` for the reduced ResNet10.
        num_classes: size of the classifier ``fc``.
        variant: ``"3t"`` (Conv3T) or ``"3d"`` (Conv3d) for every convolution with a spatial size > 1.
        base_width: channels of the stem and stage 1; stages have ``base_width * (1, 2, 4, 8)`` channels.
            64 is ResNet18; smaller values give small models for CPU experiments (ImageNet weights need 64).
        stem_temporal_stride: temporal stride of ``conv1`` and of the stem max-pool (2 as the paper; 1 keeps
            twice as many time steps, useful for short clips).
        zero_init_residual: start every block's last BatchNorm at zero weight so blocks begin as identities
            (as torchvision's option of the same name).
        in_channels: input channels (3 for RGB).

    Shape:
        ``(N, in_channels, T, H, W) -> (N, num_classes)``.
    """

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 1000,
        variant: Variant = "3t",
        base_width: int = 64,
        stem_temporal_stride: int = 2,
        zero_init_residual: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.variant = check_variant(variant)
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {tuple(layers)}")
        if base_width < 1:
            raise ValueError(f"base_width must be a positive channel count, got {base_width}")
        if stem_temporal_stride not in (1, 2):
            raise ValueError(f"stem_temporal_stride must be 1 or 2, got {stem_temporal_stride}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.base_width = base_width
        self.stem_temporal_stride = stem_temporal_stride
        ts = stem_temporal_stride
        self.inplanes = base_width
        self.conv1 = conv_kxk(variant, in_channels, base_width, 7, stride=(ts, 2, 2), padding=3)
        self.bn1 = nn.BatchNorm3d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=(ts, 2, 2), padding=1)
        self.layer1 = self._make_layer(base_width, layers[0], stride=1)
        self.layer2 = self._make_layer(base_width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(base_width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(base_width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(base_width * 8 * BasicBlock.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * BasicBlock.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm3d(planes * BasicBlock.expansion),
            )
        stage = [BasicBlock(self.inplanes, planes, stride, downsample, self.variant)]
        self.inplanes = planes * BasicBlock.expansion
        stage += [BasicBlock(self.inplanes, planes, variant=self.variant) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's ResNet init; Conv3T temporal parameters keep the identity set by Conv3T itself.
        for m in self.modules():
            if isinstance(m, nn.Conv3d | Conv3T):
                kaiming_normal_fan_out_(m)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def features(self, x: Tensor) -> Tensor:
        """``(N, C, T, H, W) -> (N, 8 * base_width, T', H', W')``, the last stage's feature map."""
        if x.dim() != 5:
            raise ValueError(f"ResNet expects a clip batch (N, C, T, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def _resnet(layers: Sequence[int], variant: Variant, num_classes: int, **kwargs: object) -> ResNet:
    return ResNet(layers, num_classes=num_classes, variant=variant, **kwargs)  # type: ignore[arg-type]


def resnet18_3t(num_classes: int = 1000, **kwargs: object) -> ResNet:
    """ResNet18 with 3TConv filters (the paper's 3T-ResNet18). ``kwargs``: see :class:`ResNet`."""
    return _resnet((2, 2, 2, 2), "3t", num_classes, **kwargs)


def resnet18_3d(num_classes: int = 1000, **kwargs: object) -> ResNet:
    """ResNet18 with full 3D convolutions (the paper's 3D-ResNet18). ``kwargs``: see :class:`ResNet`."""
    return _resnet((2, 2, 2, 2), "3d", num_classes, **kwargs)


def resnet10_3t(num_classes: int = 1000, **kwargs: object) -> ResNet:
    """Reduced ResNet (one block per stage) with 3TConv filters, for CPU demos; not in the paper."""
    return _resnet((1, 1, 1, 1), "3t", num_classes, **kwargs)


def resnet10_3d(num_classes: int = 1000, **kwargs: object) -> ResNet:
    """Reduced ResNet (one block per stage) with full 3D convolutions, for CPU demos; not in the paper."""
    return _resnet((1, 1, 1, 1), "3d", num_classes, **kwargs)
