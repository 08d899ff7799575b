"""Determinism and double backward of Conv3T (gradient penalties, saliency of saliency)."""

from __future__ import annotations

import pytest
import torch

from conv3t import Conv3T
from conv3t.nn.functional import generate_kernel

from .test_perf_cache import randomized


def train_step(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad()
    loss = model(x).square().mean()
    loss.backward()
    return [loss.detach()] + [p.grad.clone() for p in model.parameters()]


@pytest.fixture
def deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        randomized(Conv3T(3, 8, (5, 5, 5), stride=(1, 2, 2), padding=2), seed=1),
        torch.nn.BatchNorm3d(8),
        torch.nn.ReLU(),
        randomized(Conv3T(8, 8, 3, padding=1), seed=2),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    )


def test_deterministic_algorithms_flag_is_accepted_and_results_repeat(deterministic):
    model = small_net()
    x = torch.randn(2, 3, 6, 12, 12)
    first = train_step(model, x)
    second = train_step(model, x)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deterministic_on_cuda(deterministic):
    model = small_net().cuda()
    x = torch.randn(2, 3, 6, 12, 12, device="cuda")
    first = train_step(model, x)
    second = train_step(model, x)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("cin", "ks", "time_range"),
    [
        (9, (3, 3, 3), None),  # in/groups >= kH*kW: cumulative matrices, one product
        (9, (3, 3, 3), (1, 2)),
        (2, (4, 3, 3), None),  # few input channels: one product per step
        (2, (4, 3, 3), (2, 4)),
    ],
)
def test_double_backward_of_the_kernel_gradgradcheck(cin, ks, time_range):
    layer = randomized(Conv3T(cin, 2, ks).double(), seed=3)
    inputs = (layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y)

    def fn(*params):
        return generate_kernel(*params, time_range=time_range)

    assert torch.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradient_penalty_trains_the_temporal_parameters():
    """A penalty on the input gradient (double backward through the module) reaches every parameter."""
    layer = randomized(Conv3T(3, 4, 3, padding=1), seed=4)
    x = torch.randn(2, 3, 4, 6, 6, requires_grad=True)
    (gx,) = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    gx.square().sum().backward()
    for name in ("weight", "scale", "rotation", "translation_x", "translation_y"):
        grad = getattr(layer, name).grad
        assert grad is not None and torch.count_nonzero(grad) > 0, name
