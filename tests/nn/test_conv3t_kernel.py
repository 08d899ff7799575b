"""The generated kernel against the paper's equations, the identity init, the sign conventions and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conv3t import Conv3T
from conv3t.nn.functional import generate_kernel

from .reference import kernel as reference_kernel


def randomize(layer: Conv3T, spread: float = 0.3, seed: int = 0) -> Conv3T:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.scale.copy_(1 + spread * (torch.rand(layer.scale.shape, generator=gen) - 0.5))
        for p in (layer.rotation, layer.translation_x, layer.translation_y):
            p.copy_(spread * (2 * torch.rand(p.shape, generator=gen) - 1))
    return layer


def params_np(layer: Conv3T) -> list[np.ndarray]:
    return [
        p.detach().double().numpy()
        for p in (layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y)
    ]


SHAPES = [
    # in, out, (D, kH, kW), groups
    (3, 4, (2, 3, 3), 1),
    (2, 3, (3, 3, 3), 1),
    (4, 6, (4, 3, 5), 2),
    (2, 2, (5, 5, 3), 1),
    (3, 2, (6, 5, 5), 1),
    (3, 2, (7, 7, 7), 1),
    (4, 4, (3, 1, 3), 4),
    (9, 2, (3, 3, 3), 1),  # in/groups >= kH*kW: "matrix" takes the cumulative form (the others: stepwise)
    (16, 2, (4, 3, 3), 2),
    (15, 2, (3, 3, 5), 1),
]


@pytest.mark.parametrize(("cin", "cout", "ks", "groups"), SHAPES)
@pytest.mark.parametrize("method", ["matrix", "grid_sample"])
def test_kernel_matches_numpy_reference(cin, cout, ks, groups, method):
    layer = randomize(Conv3T(cin, cout, ks, groups=groups, kernel_method=method).double(), seed=sum(ks))
    got = layer.kernel().detach().numpy()
    want = reference_kernel(*params_np(layer))
    assert got.shape == (cout, cin // groups, *ks)
    np.testing.assert_allclose(got, want, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize(("cin", "cout", "ks", "groups"), SHAPES)
def test_float32_kernel_matches_numpy_reference_to_1e6(cin, cout, ks, groups):
    layer = randomize(Conv3T(cin, cout, ks, groups=groups), seed=sum(ks) + 1)
    got = layer.kernel().detach().double().numpy()
    np.testing.assert_allclose(got, reference_kernel(*params_np(layer)), atol=1e-6, rtol=0)


def test_large_motion_leaves_the_kernel_and_gives_zeros():
    layer = Conv3T(1, 1, (2, 3, 3)).double()
    with torch.no_grad():
        layer.translation_x.fill_(3.0)  # sample 3 half-widths to the right: nothing of the filter is there
    k = layer.kernel().detach()
    assert torch.count_nonzero(k[:, :, 1]) == 0
    np.testing.assert_allclose(k.numpy(), reference_kernel(*params_np(layer)), atol=1e-12)


@pytest.mark.parametrize("ks", [(3, 3, 3), (7, 7, 7), (4, 3, 5)])
def test_identity_init_repeats_the_2d_filter(ks):
    layer = Conv3T(3, 5, ks)
    assert torch.equal(layer.scale, torch.ones(5, ks[0] - 1))
    for p in (layer.rotation, layer.translation_x, layer.translation_y):
        assert torch.equal(p, torch.zeros(5, ks[0] - 1))
    k = layer.kernel()
    for t in range(ks[0]):
        torch.testing.assert_close(k[:, :, t], layer.weight, atol=1e-6, rtol=1e-6)


def one_hot_layer(row: int, col: int, size: int = 5) -> Conv3T:
    layer = Conv3T(1, 1, (2, size, size), bias=False).double()
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, row, col] = 1.0
    return layer


def position(slice2d: torch.Tensor) -> tuple[int, int]:
    idx = int(torch.argmax(slice2d))
    return divmod(idx, slice2d.shape[1])  # (row, col)


def test_convention_positive_translation_x_moves_content_left():
    """Sampling at s R (p + t): with t_x = 1 pixel (one pixel is 2/(k-1) units) the content moves one pixel left."""
    layer = one_hot_layer(2, 2)
    with torch.no_grad():
        layer.translation_x.fill_(2 / 4)  # 1 kernel pixel for a 5-wide kernel
    k = layer.kernel().detach()[0, 0]
    assert position(k[0]) == (2, 2)
    assert position(k[1]) == (2, 1)  # moved left
    assert torch.isclose(k[1].max(), torch.tensor(1.0, dtype=k.dtype))


def test_convention_positive_translation_y_moves_content_up():
    layer = one_hot_layer(2, 2)
    with torch.no_grad():
        layer.translation_y.fill_(2 / 4)
    k = layer.kernel().detach()[0, 0]
    assert position(k[1]) == (1, 2)  # row decreased: up on screen (y points down)


def test_convention_positive_rotation_turns_content_counter_clockwise_on_screen():
    """A dot right of the centre goes to above the centre for r = +90 degrees (x right, y down)."""
    layer = one_hot_layer(2, 4)  # centre row, right edge
    with torch.no_grad():
        layer.rotation.fill_(math.pi / 2)
    k = layer.kernel().detach()[0, 0]
    assert position(k[1]) == (0, 2)  # top centre: counter-clockwise on screen
    torch.testing.assert_close(k[1].max(), torch.tensor(1.0, dtype=k.dtype))


def test_convention_scale_above_one_shrinks_content():
    """s = 2 samples twice as far from the centre: a dot two pixels out lands one pixel out (zoom out)."""
    layer = one_hot_layer(2, 4)
    with torch.no_grad():
        layer.scale.fill_(2.0)
    k = layer.kernel().detach()[0, 0]
    assert position(k[1]) == (2, 3)


def test_slices_are_built_sequentially():
    """Two steps of one pixel each move the content two pixels: K_3 = warp(warp(K_1))."""
    layer = Conv3T(1, 1, (3, 5, 5), bias=False).double()
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, 2, 2] = 1.0
        layer.translation_x.fill_(-0.5)  # one pixel right per step
    k = layer.kernel().detach()[0, 0]
    assert [position(k[t]) for t in range(3)] == [(2, 2), (2, 3), (2, 4)]


def test_depth_one_has_no_temporal_parameters():
    layer = Conv3T(3, 4, (1, 3, 3))
    for p in (layer.scale, layer.rotation, layer.translation_x, layer.translation_y):
        assert p.shape == (4, 0)
    assert sum(p.numel() for p in layer.parameters()) == 4 * 3 * 9 + 4
    torch.testing.assert_close(layer.kernel()[:, :, 0], layer.weight)


def test_gradcheck_all_parameters_and_input():
    layer = randomize(Conv3T(2, 2, (3, 3, 3), padding=1).double(), spread=0.4, seed=3)
    x = torch.randn(1, 2, 4, 5, 5, dtype=torch.float64, requires_grad=True)

    def fn(x, w, s, r, tx, ty, b):
        k = generate_kernel(w, s, r, tx, ty)
        return torch.nn.functional.conv3d(x, k, b, padding=1)

    inputs = (x, layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y, layer.bias)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_through_module_forward():
    layer = randomize(Conv3T(2, 3, (2, 3, 5), stride=(1, 2, 1)).double(), spread=0.4, seed=5)
    x = torch.randn(2, 2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-5)
    # each temporal parameter receives a non-zero gradient through the module
    layer(x).square().sum().backward()
    for name in ("weight", "scale", "rotation", "translation_x", "translation_y", "bias"):
        g = getattr(layer, name).grad
        assert g is not None and torch.count_nonzero(g) > 0, name


def test_identity_init_has_nonzero_temporal_gradients():
    """At identity the sampling points are exactly on pixels; the gradient must still flow, the same in both methods.

    (Which derivative is taken there is pinned by tests/nn/test_whole_pixel_gradient.py.)"""
    torch.manual_seed(0)
    layers = {m: Conv3T(2, 3, (3, 3, 3), kernel_method=m).double() for m in ("matrix", "grid_sample")}
    layers["grid_sample"].load_state_dict(layers["matrix"].state_dict())
    x = torch.randn(1, 2, 5, 6, 6, dtype=torch.float64)
    grads = {}
    for method, layer in layers.items():
        layer(x).sin().sum().backward()
        grads[method] = [p.grad for p in (layer.scale, layer.rotation, layer.translation_x, layer.translation_y)]
    for g_matrix, g_grid in zip(grads["matrix"], grads["grid_sample"], strict=True):
        assert torch.count_nonzero(g_matrix) > 0
        torch.testing.assert_close(g_matrix, g_grid)


def test_matrix_and_grid_sample_gradients_agree_at_random_parameters():
    torch.manual_seed(1)
    a = randomize(Conv3T(3, 4, (4, 3, 5), groups=1, kernel_method="matrix").double(), seed=7)
    b = Conv3T(3, 4, (4, 3, 5), kernel_method="grid_sample").double()
    b.load_state_dict(a.state_dict())
    upstream = torch.randn(4, 3, 4, 3, 5, dtype=torch.float64)
    for layer in (a, b):
        (layer.kernel() * upstream).sum().backward()
    for name in ("weight", "scale", "rotation", "translation_x", "translation_y"):
        torch.testing.assert_close(getattr(a, name).grad, getattr(b, name).grad, msg=name)
