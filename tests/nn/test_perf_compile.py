"""Conv3T under ``torch.compile(fullgraph=True)`` (no graph break from the layer) and with channels_last_3d."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conv3t import Conv3T

from .test_perf_cache import randomized


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        randomized(Conv3T(3, 4, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2)), seed=1),
        nn.BatchNorm3d(4),
        nn.ReLU(),
        randomized(Conv3T(4, 4, 3, padding=1), seed=2),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def grads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.slow
def test_fullgraph_training_and_eval_match_eager():
    """``fullgraph=True`` raises on any graph break; aot_eager also traces the backward through AOTAutograd."""
    model = tiny_net()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 4, 12, 12)
    y, g = grads(model, x)
    yc, gc = grads(compiled, x)
    torch.testing.assert_close(yc, y, atol=1e-5, rtol=1e-5)
    for a, b in zip(gc, g, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    model.eval()
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(compiled(x), want, atol=1e-5, rtol=1e-5)
        with torch.no_grad():  # parameters changed in place: the compiled graph sees it (no stale cache)
            model[3].rotation.add_(0.1)
        torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_inductor_inference_channels_last_3d():
    """The default backend generates code for the layer (kept to one layer, inference: C++ compiles are slow)."""
    layer = randomized(Conv3T(3, 4, 3, padding=1), seed=3).eval()
    compiled = torch.compile(layer, fullgraph=True)
    x = torch.randn(2, 3, 4, 8, 8).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        y = compiled(x)
        assert y.is_contiguous(memory_format=torch.channels_last_3d)
        torch.testing.assert_close(y, layer(x), atol=1e-5, rtol=1e-5)
