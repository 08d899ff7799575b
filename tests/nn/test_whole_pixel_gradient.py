"""One derivative at whole-pixel sampling positions, the same in every kernel method (issue 27, item 4).

At the identity start, after exact one-pixel shifts and after exact quarter turns every sampling position is
a whole pixel, where bilinear sampling has kinks. The rule (conv3t.nn.sampling) is the symmetric derivative:
the average of the two one-sided ones. The oracle is independent of conv3t's code: central finite differences
of the plain numpy kernel of ``reference.py`` in float64 (a central difference across a kink of a piecewise
linear map is exactly the average of its one-sided slopes, up to O(h) from products of two such maps).
Before the rule, "matrix" and "grid_sample" disagreed here by up to the largest gradient itself.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from conv3t import Conv3T
from conv3t.nn import batch_kernel_generation
from conv3t.nn.functional import generate_kernel, resolve_method
from conv3t.nn.sampling import affine_theta, sampling_grid, whole_pixel_tolerance

from . import reference

OUT, STEPS = 2, 2


def _setting(name: str, k: int) -> np.ndarray:
    """``(4, OUT, STEPS)`` scale, rotation, translation_x, translation_y whose positions are whole pixels."""
    params = np.zeros((4, OUT, STEPS))
    params[0] = 1.0
    pixel = 2 / (k - 1)  # one kernel pixel in affine_grid units
    if name == "shift":
        params[2] = [[pixel, -pixel], [0.0, 2 * pixel]]
        params[3] = [[-pixel, 0.0], [pixel, pixel]]
    elif name == "turn":
        params[1] = [[math.pi / 2, -math.pi / 2], [math.pi, math.pi / 2]]
    elif name == "turn_shift":
        params[1] = [[math.pi / 2, 0.0], [-math.pi / 2, math.pi]]
        params[2] = [[pixel, 0.0], [0.0, -pixel]]
    return params


def _numpy_gradient(weight: np.ndarray, params: np.ndarray, upstream: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``sum(kernel * upstream)`` over every temporal parameter, float64."""
    grad = np.zeros_like(params)
    for index in np.ndindex(*params.shape):
        values = []
        for sign in (1, -1):
            moved = params.copy()
            moved[index] += sign * h
            values.append(float((reference.kernel_vectorized(weight, *moved) * upstream).sum()))
        grad[index] = (values[0] - values[1]) / (2 * h)
    return grad


def _torch_gradient(weight: np.ndarray, params: np.ndarray, upstream: np.ndarray, method: str, dtype) -> np.ndarray:
    w = torch.tensor(weight, dtype=dtype)
    temporal = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in params]
    second_order = method == "matrix_create_graph"  # the backward that differentiates the composed operations
    kernel = generate_kernel(w, *temporal, method="grid_sample" if method == "grid_sample" else "matrix")
    loss = (kernel * torch.tensor(upstream, dtype=dtype)).sum()
    grads = torch.autograd.grad(loss, temporal, create_graph=second_order)
    return torch.stack(grads).detach().double().numpy()


def _case(k: int, cin: int, setting: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((OUT, cin, k, k))
    upstream = rng.standard_normal((OUT, cin, STEPS + 1, k, k))
    return weight, _setting(setting, k), upstream


CASES = [
    (3, 2, "identity"),  # stepwise (in/groups < P)
    (3, 9, "identity"),  # cumulative
    (7, 3, "identity"),
    (7, 49, "identity"),
    (3, 9, "shift"),
    (7, 3, "shift"),
    (3, 2, "turn"),
    (7, 49, "turn"),
    (3, 9, "turn_shift"),
    (5, 4, "turn_shift"),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("k", "cin", "setting"), CASES)
def test_every_method_takes_the_symmetric_derivative_at_whole_pixels(k, cin, setting, dtype):
    weight, params, upstream = _case(k, cin, setting)
    want = _numpy_gradient(weight, params, upstream)
    assert np.abs(want).max() > 1.0
    # float64: the oracle's own O(h) error; float32: the methods' rounding (the rule's error was ~1x the max)
    atol = (1e-5 if dtype == torch.float64 else 2e-4) * np.abs(want).max()
    algorithms = {resolve_method("matrix", cin, k, k)}
    for method in ("matrix", "matrix_create_graph", "grid_sample"):
        got = _torch_gradient(weight, params, upstream, method, dtype)
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=f"{method} ({algorithms}), {setting}")


def test_the_cases_cover_every_matrix_form():
    forms = {resolve_method("matrix", cin, k, k) for k, cin, _ in CASES}
    assert forms == {"cumulative", "stepwise", "sparse"}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_model_level_generation_takes_the_same_derivative_at_identity(dtype):
    torch.manual_seed(0)
    model = torch.nn.Sequential(Conv3T(9, 9, 3, padding=1), torch.nn.ReLU(), Conv3T(9, 9, 3, padding=1)).to(dtype)
    batched = batch_kernel_generation(copy.deepcopy(model))
    reference_model = copy.deepcopy(model)
    for layer in reference_model.modules():
        if isinstance(layer, Conv3T):
            layer.kernel_method = "grid_sample"
    x = torch.randn(2, 9, 4, 6, 6, dtype=dtype)
    grads = []
    for net in (batched, model, reference_model):
        net(x).sin().sum().backward()
        grads.append(torch.stack([net[i].translation_x.grad for i in (0, 2)] + [net[i].rotation.grad for i in (0, 2)]))
    tol = {"atol": 1e-10, "rtol": 1e-8} if dtype == torch.float64 else {"atol": 1e-4, "rtol": 1e-4}
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[0], grads[1], **tol)
    torch.testing.assert_close(grads[0], grads[2], **tol)


def test_symmetric_derivative_by_hand_for_one_shift():
    """3x3, identity, one step: d slice_1[i, j] / d t_x = (K[i, j+1] - K[i, j-1]) / 2 (zero outside)."""
    weight = torch.arange(9.0, dtype=torch.float64).view(1, 1, 3, 3) ** 2
    params = [torch.tensor([[v]], dtype=torch.float64, requires_grad=True) for v in (1.0, 0.0, 0.0, 0.0)]
    for method in ("matrix", "grid_sample"):
        kernel = generate_kernel(weight, *params, method=method)
        upstream = torch.zeros_like(kernel)
        upstream[0, 0, 1, 1, 0] = 1.0  # the left pixel of the middle row: (K[1, 1] - 0) / 2 = 16 / 2
        upstream[0, 0, 1, 0, 1] = 10.0  # the top middle pixel: (K[0, 2] - K[0, 0]) / 2 = 2, times 10
        (grad,) = torch.autograd.grad((kernel * upstream).sum(), params[2])
        assert grad.item() == pytest.approx(8.0 + 20.0), method


@pytest.mark.parametrize("method", ["matrix", "grid_sample"])
def test_gradcheck_close_to_but_off_the_kinks(method):
    """Within a hundredth of a pixel of whole pixels but outside the band: the ordinary derivative (gradcheck)."""
    torch.manual_seed(0)
    layer = Conv3T(9, 2, (3, 3, 3), kernel_method=method).double()
    offsets = 0.01 * (torch.rand(3, 2, 2, dtype=torch.float64) - 0.5)
    with torch.no_grad():
        layer.translation_x.copy_(1.0 + offsets[0])
        layer.rotation.copy_(math.pi / 2 + offsets[1])
        layer.translation_y.copy_(offsets[2])
    params = (layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y)
    theta = affine_theta(*(p.detach() for p in params[1:]))
    pos = sampling_grid(theta, 3, 3)
    distance = (pos - pos.round()).abs()
    assert 1e-2 > distance.min() > 1e-5  # near the kinks, off them by more than gradcheck's steps
    assert distance.min() > 1e3 * whole_pixel_tolerance(torch.float64, 3, 3)

    def fn(*temporal):
        return generate_kernel(params[0].detach(), *temporal, method=method)

    assert torch.autograd.gradcheck(fn, params[1:], eps=1e-7, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("method", ["matrix", "grid_sample"])
@pytest.mark.parametrize("k", [3, 7])
def test_no_preferred_direction_at_the_identity_start(method, k):
    """Mirror-symmetric filter and loss: the loss is even in t_x, so its derivative at t_x = 0 is 0.

    A one-sided derivative is not 0 here: it pushes the first updates of every channel the same way."""
    torch.manual_seed(0)
    weight = torch.randn(2, 4, k, k, dtype=torch.float32)
    weight = weight + weight.flip(-1)  # symmetric under x -> -x
    upstream = torch.randn(2, 4, 3, k, k)
    upstream = upstream + upstream.flip(-1)
    temporal = [torch.full((2, 2), v, requires_grad=True) for v in (1.0, 0.0, 0.0, 0.0)]
    kernel = generate_kernel(weight, *temporal, method=method)
    (grad_tx,) = torch.autograd.grad((kernel * upstream).sum(), temporal[2])
    (grad_s,) = torch.autograd.grad((generate_kernel(weight, *temporal, method=method) * upstream).sum(), temporal[0])
    assert grad_s.abs().max() > 1e-2  # the loss does depend on the parameters
    assert grad_tx.abs().max() <= 1e-5 * grad_s.abs().max()
