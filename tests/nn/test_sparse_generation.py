"""The ``"sparse"`` form of the ``"matrix"`` method (issue 28, item 3): four taps per kernel element.

For filters of 7x7 and more over fewer input channels than pixels (the 7x7 RGB stems) ``"matrix"`` warps the
slices with bilinear sampling instead of dense ``P x P`` products. Same kernel as the dense forms (float32 to
1e-6 of the largest entry), exact first and second derivatives (gradcheck, gradgradcheck).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import conv3t.nn.functional as functional
from conv3t import Conv3T
from conv3t.nn import randomize_temporal_parameters
from conv3t.nn.functional import generate_kernel, resolve_method

from . import reference


def _params(cin: int, k: int, depth: int, dtype, seed: int = 0):
    torch.manual_seed(seed)
    layer = Conv3T(cin, 3, (depth, k, k)).to(dtype)
    randomize_temporal_parameters(layer, 0.4, torch.Generator().manual_seed(seed), scale_bound=0.2)
    return [
        p.detach().clone()
        for p in (layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y)
    ]


def test_the_rule_picks_sparse_for_large_filters_over_few_channels():
    assert resolve_method("matrix", 3, 7, 7) == "sparse"
    assert resolve_method("matrix", 48, 7, 7) == "sparse"
    assert resolve_method("matrix", 49, 7, 7) == "cumulative"
    assert resolve_method("matrix", 3, 5, 5) == "stepwise"
    assert resolve_method("matrix", 3, 3, 3) == "stepwise"
    assert resolve_method("matrix", 64, 3, 3) == "cumulative"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("time_range", [None, (2, 5), (0, 3)])
def test_sparse_kernel_equals_the_dense_stepwise_one_and_the_numpy_reference(dtype, time_range, monkeypatch):
    params = _params(3, 7, 5, dtype)
    sparse = generate_kernel(*params, time_range=time_range)
    monkeypatch.setattr(functional, "SPARSE_MIN_PIXELS", 10**9)
    assert resolve_method("matrix", 3, 7, 7) == "stepwise"
    dense = generate_kernel(*params, time_range=time_range)
    want = torch.from_numpy(reference.kernel_vectorized(*(p.double().numpy() for p in params)))
    if time_range is not None:
        want = want[:, :, time_range[0] : time_range[1]]
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert (sparse - dense).abs().max() <= tol * dense.abs().max()
    assert (sparse.double() - want).abs().max() <= tol * want.abs().max()


def test_sparse_channels_last_kernel_has_the_same_values():
    params = _params(3, 7, 3, torch.float32)
    plain = generate_kernel(*params)
    last = generate_kernel(*params, channels_last=True)
    assert last.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(last, plain, rtol=0, atol=0)


def test_sparse_gradcheck_and_gradgradcheck():
    params = [p.requires_grad_() for p in _params(2, 7, 3, torch.float64, seed=1)]
    assert resolve_method("matrix", 2, 7, 7) == "sparse"
    assert torch.autograd.gradcheck(generate_kernel, params, eps=1e-6, atol=1e-6, fast_mode=True)
    assert torch.autograd.gradgradcheck(generate_kernel, params, eps=1e-6, atol=1e-5, fast_mode=True)


def test_sparse_under_forward_mode_takes_the_dense_form():
    params = _params(3, 7, 3, torch.float64)
    weight, scale, *rest = params
    jac = torch.func.jacfwd(lambda s: generate_kernel(weight, s, *rest))(scale)
    reverse = torch.autograd.functional.jacobian(lambda s: generate_kernel(weight, s, *rest), scale)
    torch.testing.assert_close(jac, reverse, rtol=1e-9, atol=1e-11)


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(("device", "sparse"), [("cpu", True), ("meta", False)])
def test_sparse_only_on_the_cpu(device, sparse):
    """Other devices keep the deterministic dense form (grid_sample's CUDA backward is not deterministic)."""
    params = [p.to(device) for p in _params(3, 7, 3, torch.float32)]
    with _Ops() as ops:
        kernel = generate_kernel(*params)
    assert kernel.device.type == device and kernel.shape == (3, 3, 3, 7, 7)
    assert any(name.startswith("grid_sampler_2d") for name in ops.names) == sparse, sorted(ops.names)
