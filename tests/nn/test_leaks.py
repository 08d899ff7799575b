"""No step leaves memory behind (issue 16): forward with grad, forward + backward, and full training steps.

Before the fix, a Conv3T over few input channels (the 3-channel 7x7x7 stem) kept every call's graph alive:
its stepwise kernel Function held views of its own output as a ``ctx`` attribute, a cycle through C++ autograd
nodes that no collector frees (11.6 MB per step for the stem on a 2x3x16x32x32 clip). Counted in bytes of live
tensor storage (``live_storage``), so the test is exact and unaffected by other processes on the machine.
"""

from __future__ import annotations

import pytest
import torch

from conv3t import Conv3T
from conv3t.models import create_model
from conv3t.nn import randomize_temporal_parameters

from .live_storage import surviving_storage


def _message(survivors) -> str:
    return f"{survivors.nbytes} bytes in {survivors.count} storages outlived their step; largest: {survivors.largest}"


class _HoldsOutputOnCtx(torch.autograd.Function):
    """The bug pattern itself: a view of the output kept as a ctx attribute."""

    @staticmethod
    def forward(ctx, x):
        out = x * 2
        ctx.kept = out[:1]
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


def test_detector_sees_a_cycle_through_the_autograd_graph():
    x = torch.randn(64, 64, requires_grad=True)
    survivors = surviving_storage(lambda: _HoldsOutputOnCtx.apply(x).sum().backward(), watched=4)
    assert survivors.count == 4 and survivors.nbytes >= 4 * 64 * 64 * 4


def test_detector_ignores_what_the_next_step_replaces():
    layer = torch.nn.Conv3d(3, 4, 3)
    x = torch.randn(1, 3, 4, 8, 8)

    def step():
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()  # a fresh .grad every step, alive until the next one

    assert surviving_storage(step, watched=4).nbytes == 0


@pytest.mark.parametrize("kernel", [3, 7])
@pytest.mark.parametrize("cin", [1, 3, 64])
@pytest.mark.parametrize("mode", ["train-forward", "eval-forward", "forward-backward"])
def test_conv3t_layer_keeps_nothing(cin, kernel, mode, one_thread):
    torch.manual_seed(0)
    layer = Conv3T(cin, 16, kernel, stride=2, padding=kernel // 2, bias=False)
    randomize_temporal_parameters(layer, 0.3)
    layer.train(mode != "eval-forward")
    x = torch.randn(1, cin, 8, 16, 16)

    def step():
        out = layer(x)  # grad enabled: the parameters require it
        if mode == "forward-backward":
            layer.zero_grad(set_to_none=True)
            out.sum().backward()

    survivors = surviving_storage(step, watched=5)
    assert survivors.nbytes == 0, _message(survivors)


def test_input_gradient_keeps_nothing(one_thread):
    """What saliency computes: d output / d clip, the parameters untouched."""
    layer = Conv3T(3, 16, 7, stride=2, padding=3, bias=False).eval()
    x = torch.randn(1, 3, 8, 16, 16, requires_grad=True)
    survivors = surviving_storage(lambda: torch.autograd.grad(layer(x).sum(), x), watched=5)
    assert survivors.nbytes == 0, _message(survivors)


# name -> (model, the smallest clip side it takes): the leak was per call, not per pixel
_MODELS = {
    "demo": (lambda: create_model("resnet10_3t", 9, base_width=16, stem_temporal_stride=1), 16),
    "resnet18_3t": (lambda: create_model("resnet18_3t", 5), 16),
    "googlenet_3t": (lambda: create_model("googlenet_3t", 5), 32),
}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", list(_MODELS))
def test_training_steps_keep_nothing(name, precision, one_thread):
    """30 steps of forward + backward + Adam: what any step allocated is gone once later steps replaced it."""
    torch.manual_seed(0)
    build, side = _MODELS[name]
    model = build().train()
    randomize_temporal_parameters(model, 0.3)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    clip = torch.randn(2, 3, 8, side, side)
    labels = torch.tensor([0, 1])

    def step():
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(clip)
            logits = out[0] if isinstance(out, tuple) else out
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        optimiser.step()

    survivors = surviving_storage(step, warmup=2, watched=25, after=3)
    assert survivors.nbytes == 0, _message(survivors)
