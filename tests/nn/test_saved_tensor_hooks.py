"""Kernel generation saves everything for backward through ``save_for_backward`` (issue 28, item 3).

Saved-tensor hooks (``torch.autograd.graph.saved_tensors_hooks``; ``save_on_cpu`` is one, which on a CPU-only
machine keeps tensors where they are) only see what autograd saves. A tensor kept as a ``ctx`` attribute
bypasses them and stays in device memory until backward. The hook here moves every saved tensor out of torch's
memory into a numpy copy, so after the forward no storage that generation allocated may still be alive except
the result; ``_StepMatrices`` used to keep its slopes and shifted points as ``ctx.saved`` and failed this.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conv3t import Conv3T
from conv3t.nn import batch_kernel_generation
from conv3t.nn.functional import generate_kernel, resolve_method

from .live_storage import held_after


def _offload(tensor: torch.Tensor) -> tuple[np.ndarray, torch.dtype]:
    return tensor.detach().numpy().copy(), tensor.dtype


def _restore(packed: tuple[np.ndarray, torch.dtype]) -> torch.Tensor:
    array, dtype = packed
    return torch.from_numpy(array).to(dtype)


def _params(cin: int, k: int, method: str):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, cin, k, k, generator=g, dtype=torch.float64, requires_grad=True)
    temporal = [(0.2 * torch.randn(4, 2, generator=g, dtype=torch.float64)) for _ in range(4)]
    temporal[0] = temporal[0] + 1
    temporal = [t.requires_grad_() for t in temporal]
    return weight, temporal


def _foreign(held, result: torch.Tensor) -> list[tuple[int, str]]:
    own = result.untyped_storage()._cdata
    return [(n, op) for ref, n, op in held if ref.cdata != own]


@pytest.mark.parametrize(
    ("cin", "k", "method"), [(9, 3, "matrix"), (2, 3, "matrix"), (3, 7, "matrix"), (3, 5, "grid_sample")]
)
def test_generation_keeps_nothing_outside_the_saved_tensor_hooks(cin, k, method):
    weight, temporal = _params(cin, k, method)
    upstream = torch.randn(4, cin, 3, k, k, dtype=torch.float64)
    generate_kernel(weight, *temporal, method=method)  # warm: cached constants of the kernel size
    with torch.autograd.graph.saved_tensors_hooks(_offload, _restore):
        kernel, held = held_after(lambda: generate_kernel(weight, *temporal, method=method))
    assert not _foreign(held, kernel), f"{resolve_method(method, cin, k, k)}: {_foreign(held, kernel)}"
    got = torch.autograd.grad((kernel * upstream).sum(), [weight, *temporal])
    want = torch.autograd.grad(
        (generate_kernel(weight, *temporal, method=method) * upstream).sum(), [weight, *temporal]
    )
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_model_level_generation_keeps_nothing_outside_the_hooks():
    torch.manual_seed(0)
    model = torch.nn.Sequential(Conv3T(9, 9, 3, padding=1), Conv3T(9, 9, 3, padding=1)).double()
    batch_kernel_generation(model)
    x = torch.randn(1, 9, 3, 4, 4, dtype=torch.float64)
    model(x).sum().backward()  # warm
    with torch.autograd.graph.saved_tensors_hooks(_offload, _restore):
        y, held = held_after(lambda: model(x))
    assert not _foreign(held, y), _foreign(held, y)
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
