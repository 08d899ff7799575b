"""Model-level batched kernel generation equals per-layer generation; the operation budget of issue 13."""

from __future__ import annotations

import collections
import copy
import pickle

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from conv3t import Conv3T
from conv3t.nn import batch_kernel_generation, shares_kernel_generation

from .test_perf_cache import randomized


def net(dtype: torch.dtype = torch.float64) -> nn.Module:
    """Two groups of shareable 3x3 layers (depth 3 and 2), one layer over few channels, one 1x1x1 conv."""
    torch.manual_seed(0)
    layers = [
        randomized(Conv3T(3, 12, (3, 3, 3), padding=1), seed=1),  # in 3 < 9: stepwise, alone
        nn.ReLU(),
        randomized(Conv3T(12, 10, (3, 3, 3), padding=1), seed=2),
        nn.ReLU(),
        randomized(Conv3T(10, 16, (3, 3, 3), stride=(2, 1, 1), padding=1), seed=3),
        nn.ReLU(),
        randomized(Conv3T(16, 9, (2, 3, 3), padding=(1, 1, 1)), seed=4),
        nn.ReLU(),
        randomized(Conv3T(9, 9, (2, 3, 3)), seed=5),
        nn.Conv3d(9, 4, 1),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers).to(dtype)


def step(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    y = model(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("frames", [4, 1])  # 1 frame: every layer crops its kernel to the slices it uses
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batched_generation_gives_the_per_layer_values_and_gradients(frames, dtype):
    alone = net(dtype)
    batched = batch_kernel_generation(copy.deepcopy(alone))
    x = torch.randn(2, 3, frames, 7, 7, dtype=dtype)
    want, want_grads = step(alone, x)
    got, got_grads = step(batched, x)
    tol = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 1e-6, "rtol": 1e-5}
    torch.testing.assert_close(got, want, **tol)
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, **tol)


class Counter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def step_ops(model: nn.Module, x: torch.Tensor) -> int:
    """Non-view aten operations of one training step of ``model`` (after a first step: shape memos)."""

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    train_step()
    counter = Counter()
    with counter:
        train_step()
    return sum(counter.counts.values())


def test_batched_path_is_used_and_saves_operations():
    """The shared path must actually run: far fewer operations than every layer generating alone."""
    x = torch.randn(2, 3, 4, 7, 7, dtype=torch.float64)
    alone = step_ops(net(), x)
    batched = step_ops(batch_kernel_generation(net()), x)
    assert batched < alone - 50, (batched, alone)


def test_operation_budget_per_layer_of_a_batched_model():
    """Issue 13: at most 9 non-view operations of kernel generation per Conv3T layer (forward + backward).

    Twenty 3x3x3 layers of one group; generation = the step's operations minus those of the same network
    with plain Conv3d layers (the counts are deterministic). Measured 8.2: 6 per layer (the kernel product
    forward; backward two products, the zero gradient of the identity rows, and the filter gradient's copy
    into the weight's layout: issue 28 traded it for a 1.4x faster product on the CPU,
    benchmarks/kernel_product.py) and ~44 for the group's sampling matrices. The budget was 8 before that.
    """
    torch.manual_seed(0)

    def build(conv: type) -> nn.Module:
        return nn.Sequential(*[conv(16, 16, 3, padding=1) for _ in range(20)])

    x = torch.randn(1, 16, 2, 5, 5)
    t3 = batch_kernel_generation(build(Conv3T))
    for layer in t3:
        randomized(layer)
    per_layer = (step_ops(t3, x) - step_ops(build(nn.Conv3d), x)) / 20
    assert per_layer <= 9, per_layer


def test_outside_the_models_forward_a_layer_generates_alone():
    model = batch_kernel_generation(net())
    x = torch.randn(2, 3, 4, 7, 7, dtype=torch.float64)
    model(x)
    layer = model[2]
    assert "_shared_stack" not in layer.__dict__  # released after the forward
    torch.testing.assert_close(layer.kernel(), copy.deepcopy(layer).kernel())


def test_a_parameter_changed_during_the_forward_is_seen():
    """A layer whose parameters change after the pre-hook (here by an earlier layer's hook) generates alone."""
    model = batch_kernel_generation(net())
    reference = copy.deepcopy(model)
    batch_kernel_generation(reference, enabled=False)

    def bump(module, args, output):
        with torch.no_grad():
            module_after.rotation.add_(0.05)

    module_after = model[4]
    model[2].register_forward_hook(bump)
    x = torch.randn(2, 3, 4, 7, 7, dtype=torch.float64)
    y = model(x)
    with torch.no_grad():
        reference[4].rotation.copy_(model[4].rotation)
    torch.testing.assert_close(y, reference(x), atol=1e-12, rtol=1e-10)


def test_switching_off_pickling_and_eval():
    model = batch_kernel_generation(net())
    assert shares_kernel_generation(model)
    batch_kernel_generation(model)  # idempotent: one pre-hook
    assert sum(1 for _ in model._forward_pre_hooks.values()) == 1
    copied = pickle.loads(pickle.dumps(model))
    assert shares_kernel_generation(copied)
    x = torch.randn(1, 3, 4, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(copied(x), model(x))
    model.eval()
    with torch.no_grad():  # inference: no sharing, each layer's cache
        torch.testing.assert_close(model(x), batch_kernel_generation(copy.deepcopy(model), enabled=False)(x))
    batch_kernel_generation(model, enabled=False)
    assert not shares_kernel_generation(model) and not model._forward_hooks
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        batch_kernel_generation("resnet")  # type: ignore[arg-type]


def test_autocast_kernels_are_generated_in_float32_as_alone():
    """Under autocast the shared path, like a layer alone, generates in float32 (only the convolution is bf16)."""
    alone = net(torch.float32)
    batched = batch_kernel_generation(copy.deepcopy(alone))
    x = torch.randn(2, 3, 4, 7, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, want_grads = step(alone, x)
        got, got_grads = step(batched, x)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_double_backward_through_a_batched_model():
    model = batch_kernel_generation(net())
    reference = batch_kernel_generation(copy.deepcopy(model), enabled=False)
    x = torch.randn(1, 3, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    grads = []
    for m in (model, reference):
        m.zero_grad(set_to_none=True)
        (gx,) = torch.autograd.grad(m(x).square().sum(), x, create_graph=True)
        gx.square().sum().backward()
        grads.append([p.grad for p in m.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)
