"""Shared pieces of the converter tests: a small functional model and BatchNorm calibration."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FunctionalNet(nn.Module):
    """A small classifier whose pooling, resampling and concatenation are all functional calls."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.branch = nn.Conv2d(8, 8, (3, 5), padding=(1, 2), bias=False)
        self.mix = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(8, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn(self.stem(x)))
        y = F.max_pool2d(x, 2)
        y = F.avg_pool2d(self.branch(y), 3, 1, 1)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        z = F.relu(self.mix(torch.cat([x, y], dim=1)))
        z = F.adaptive_max_pool2d(z, 4)
        return self.head(z.mean((2, 3)))


@torch.no_grad()
def calibrate(model: nn.Module, channels: int = 3, size: int = 32, seed: int = 0) -> nn.Module:
    """Give a randomly initialised model BatchNorm statistics of real activations (one training-mode forward
    with cumulative averaging), so that eval-mode logits are of order one instead of vanishing or exploding;
    a relative check at a scale of 1e-14 would test little. Returns the model in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    generator = torch.Generator().manual_seed(seed)
    model.train()
    model(torch.randn(8, channels, size, size, generator=generator))
    return model.eval()
