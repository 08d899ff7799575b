"""The faithfulness perturbations and the ROAD fill on (fake) CUDA (issue 28): masks, orders and noise made on
the CPU reach a CUDA model's clips only through explicit moves (``fake_cuda``, tests/conftest.py).

ROAD's conjugate-gradient solve picks the frames that have a hole (``nonzero``) and stops when it has converged:
values a fake tensor does not have, so under fake CUDA the fill runs up to that read and raises there; anything
else (a device mismatch before it) fails the test."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException

from conv3t import Conv3T
from conv3t.explain.faithfulness.perturb import (
    ablated_probabilities,
    frame_probabilities,
    road_impute,
    spatial_probabilities,
)


def _model() -> nn.Module:
    return nn.Sequential(
        Conv3T(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3)
    ).eval()


def test_road_fill_on_cuda(fake_cuda) -> None:  # type: ignore[no-untyped-def]
    removed = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3  # a CPU mask
    with fake_cuda:
        frames = torch.randn(4, 3, 8, 8, device="cuda")
        fill = frames.mean(dim=(2, 3))
        with pytest.raises((DataDependentOutputException, DynamicOutputShapeException)):
            road_impute(frames, removed, fill, 0.01, torch.Generator().manual_seed(1))


def test_perturbations_on_cuda(fake_cuda) -> None:  # type: ignore[no-untyped-def]
    model = _model()
    deleted = torch.rand(3, 6, generator=torch.Generator().manual_seed(0)) < 0.5  # (D, T) on the CPU
    keep = {"0": torch.rand(3, 4, generator=torch.Generator().manual_seed(1)) < 0.5}  # channel masks, CPU
    orders = torch.stack([torch.randperm(6 * 8 * 8, generator=torch.Generator().manual_seed(s)) for s in range(2)])
    with fake_cuda:
        model.to("cuda")
        clip = torch.randn(1, 3, 6, 8, 8, device="cuda")
        assert frame_probabilities(model, clip, 1, deleted, batch_size=2).shape == (3, 2)  # probability, logit
        assert ablated_probabilities(model, clip, 1, keep, batch_size=2).shape == (3, 2)  # probability, logit
        generator = torch.Generator().manual_seed(2)
        noise = torch.full((3,), 0.01, device="cuda")
        with pytest.raises((DataDependentOutputException, DynamicOutputShapeException)):
            spatial_probabilities(model, clip, 1, orders, [0, 96, 384], 4, generator, noise)
