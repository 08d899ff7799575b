"""Conv3T's inference cache, channels_last_3d kernels, temporal cropping and kernel-method equivalence.

The cache is observed from outside: how often the layer generates a kernel (``generate_kernel`` is patched
with a counting wrapper) and whether outputs always equal a convolution with a freshly generated kernel.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F

import conv3t.nn.conv3t as conv3t_module
from conv3t import Conv3T
from conv3t.nn.functional import KERNEL_METHODS, generate_kernel


def randomized(layer: Conv3T, seed: int = 0) -> Conv3T:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.scale.copy_(1 + 0.3 * (torch.rand(layer.scale.shape, generator=gen) - 0.5))
        for p in (layer.rotation, layer.translation_x, layer.translation_y):
            p.copy_(0.3 * (2 * torch.rand(p.shape, generator=gen) - 1))
    return layer


@pytest.fixture
def generations(monkeypatch):
    """Counts the kernel generations the module performs."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return generate_kernel(*args, **kwargs)

    monkeypatch.setattr(conv3t_module, "generate_kernel", counting)
    return calls


def fresh(layer: Conv3T, x: torch.Tensor) -> torch.Tensor:
    """The output with a freshly generated kernel, independent of any cache."""
    with torch.no_grad():
        k = generate_kernel(layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y)
        return F.conv3d(x, k, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def test_eval_no_grad_generates_once_and_matches(generations):
    layer = randomized(Conv3T(3, 4, 3, padding=1)).eval()
    x = torch.randn(2, 3, 5, 6, 6)
    with torch.no_grad():
        outs = [layer(x) for _ in range(4)]
    assert len(generations) == 1
    for y in outs:
        torch.testing.assert_close(y, fresh(layer, x), rtol=0, atol=0)


def test_inference_mode_caches_too(generations):
    layer = randomized(Conv3T(3, 4, 3, padding=1)).eval()
    x = torch.randn(1, 3, 4, 6, 6)
    with torch.inference_mode():
        a, b = layer(x), layer(x)
    assert len(generations) == 1
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with torch.no_grad():  # an inference-mode kernel is not reused outside inference mode
        torch.testing.assert_close(layer(x), fresh(layer, x))


def test_training_forward_regenerates_every_time_and_keeps_no_cache(generations):
    layer = randomized(Conv3T(3, 4, 3, padding=1))
    x = torch.randn(1, 3, 4, 6, 6)
    with torch.no_grad():
        layer(x)
    assert layer._kernel_cache is not None
    for _ in range(3):
        layer(x).sum().backward()
    assert len(generations) == 4
    assert layer._kernel_cache is None  # no stale kernel kept alive while training
    for name in ("weight", "scale", "rotation", "translation_x", "translation_y", "bias"):
        assert getattr(layer, name).grad is not None, name


def test_eval_with_grad_still_trains_the_parameters(generations):
    """Eval mode alone does not cache: a gradient can still reach the parameters (e.g. saliency of a param)."""
    layer = randomized(Conv3T(2, 3, 3, padding=1)).eval()
    x = torch.randn(1, 2, 4, 5, 5)
    layer(x).sum().backward()
    layer(x).sum().backward()
    assert len(generations) == 2
    assert torch.count_nonzero(layer.rotation.grad) > 0


def test_frozen_parameters_use_the_cache_and_input_gradients_are_right(generations):
    layer = randomized(Conv3T(2, 3, 3, padding=1)).eval().requires_grad_(False)
    x = torch.randn(1, 2, 4, 5, 5, requires_grad=True)
    (g1,) = torch.autograd.grad(layer(x).square().sum(), x)
    (g2,) = torch.autograd.grad(layer(x).square().sum(), x)
    assert len(generations) == 1
    k = layer.kernel()
    xr = x.detach().requires_grad_(True)
    (want,) = torch.autograd.grad(F.conv3d(xr, k, layer.bias, padding=1).square().sum(), xr)
    torch.testing.assert_close(g1, want)
    torch.testing.assert_close(g2, want)


@pytest.mark.parametrize("name", ["weight", "scale", "rotation", "translation_x", "translation_y", "bias"])
def test_in_place_parameter_change_invalidates(name, generations):
    layer = randomized(Conv3T(3, 4, 3, padding=1)).eval()
    x = torch.randn(1, 3, 4, 6, 6)
    with torch.no_grad():
        before = layer(x)
        getattr(layer, name).add_(0.05)
        after = layer(x)
    assert len(generations) == (1 if name == "bias" else 2)  # the bias is not part of the kernel
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, fresh(layer, x), rtol=0, atol=0)


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
@pytest.mark.parametrize("foreach", [False, True])
def test_optimizer_step_invalidates(optimizer, foreach, generations):
    layer = randomized(Conv3T(3, 4, 3, padding=1))
    opt = optimizer(layer.parameters(), lr=0.05, foreach=foreach)
    x = torch.randn(2, 3, 4, 6, 6)
    for step in range(2):
        layer(x).square().mean().backward()
        with torch.no_grad():
            before = layer(x)  # caches the kernel of the parameters before the step
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            after = layer(x)
        assert len(generations) == 3 * (step + 1)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, fresh(layer, x), rtol=0, atol=0)


def test_data_reassignment_invalidates():
    layer = randomized(Conv3T(3, 4, 3, padding=1)).eval()
    x = torch.randn(1, 3, 4, 6, 6)
    with torch.no_grad():
        layer(x)
        layer.rotation.data = layer.rotation.data + 0.2  # new storage, version counter untouched
        torch.testing.assert_close(layer(x), fresh(layer, x), rtol=0, atol=0)


def test_train_eval_load_state_dict_and_to_drop_the_cache(generations):
    layer = randomized(Conv3T(3, 4, 3, padding=1)).eval()
    other = randomized(Conv3T(3, 4, 3, padding=1), seed=7)
    x = torch.randn(1, 3, 4, 6, 6)
    with torch.no_grad():
        layer(x)
        layer.train()
        layer.eval()
        layer(x)
        assert len(generations) == 2
        layer.load_state_dict(other.state_dict())
        torch.testing.assert_close(layer(x), fresh(other, x), rtol=0, atol=0)
        assert len(generations) == 3
        double = layer.to(torch.float64)
        y = double(x.double())
        assert y.dtype == torch.float64 and len(generations) == 4
        torch.testing.assert_close(y, fresh(double, x.double()))


def test_deepcopy_does_not_share_a_stale_cache():
    layer = randomized(Conv3T(3, 4, 3, padding=1)).eval()
    x = torch.randn(1, 3, 4, 6, 6)
    with torch.no_grad():
        layer(x)
        twin = copy.deepcopy(layer)
        twin.scale.mul_(1.2)
        torch.testing.assert_close(twin(x), fresh(twin, x), rtol=0, atol=0)
        torch.testing.assert_close(layer(x), fresh(layer, x), rtol=0, atol=0)


def test_autocast_cache_holds_the_low_precision_kernel(generations):
    layer = randomized(Conv3T(3, 4, 3, padding=1)).eval()
    x = torch.randn(1, 3, 4, 6, 6)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a = layer(x)
            b = layer(x)
            assert layer._kernel_cache[1].dtype == torch.bfloat16
        full = layer(x)  # outside autocast: the float32 kernel again
    assert len(generations) == 2
    assert a.dtype == torch.bfloat16 and full.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = F.conv3d(x, layer.kernel(), layer.bias, padding=1)  # autocast casts the fresh kernel itself
    torch.testing.assert_close(a, want, rtol=0, atol=0)


def test_channels_last_input_gets_channels_last_kernel_and_output():
    layer = randomized(Conv3T(4, 6, 3, padding=1))
    x = torch.randn(2, 4, 5, 7, 7)
    xc = x.contiguous(memory_format=torch.channels_last_3d)
    y, yc = layer(x), layer(xc)
    assert yc.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(yc, y, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, list(layer.parameters()), g)
    grads_c = torch.autograd.grad(yc, list(layer.parameters()), g)
    for a, b in zip(grads, grads_c, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_model_to_channels_last_3d_keeps_the_2d_filter_usable():
    model = torch.nn.Sequential(randomized(Conv3T(3, 4, 3, padding=1)), torch.nn.ReLU(), torch.nn.Conv3d(4, 2, 1))
    x = torch.randn(2, 3, 4, 6, 6)
    want = model(x)
    model.to(memory_format=torch.channels_last_3d)
    assert model[2].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model[0].weight.shape == (4, 3, 3, 3)
    torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last_3d)), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", KERNEL_METHODS)
@pytest.mark.parametrize("ks", [(3, 3, 3), (7, 7, 7), (4, 3, 5)])
@pytest.mark.parametrize("cin", [2, 20])
def test_every_method_gives_the_same_kernel_and_gradients(method, ks, cin):
    """cin 20 >= 9: "matrix" takes the cumulative form for 3x3 and 3x5 (stepwise for 7x7); cin 2: stepwise."""
    torch.manual_seed(0)
    layer = randomized(Conv3T(cin, 3, ks).double())
    params = [layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y]
    ref = generate_kernel(*params, method="grid_sample")
    got = generate_kernel(*params, method=method)
    cl = generate_kernel(*params, method=method, channels_last=True)
    assert cl.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(cl, ref, atol=1e-12, rtol=1e-10)
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(got, params, g), torch.autograd.grad(ref, params, g), strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_time_range_builds_a_slice_of_the_kernel():
    layer = randomized(Conv3T(3, 2, (5, 3, 3)).double())
    params = [layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y]
    full = layer.kernel()
    for method in KERNEL_METHODS:
        for start, stop in [(0, 1), (1, 2), (2, 4), (0, 5), (4, 5)]:
            part = generate_kernel(*params, method=method, time_range=(start, stop))
            torch.testing.assert_close(part, full[:, :, start:stop], atol=1e-12, rtol=1e-10)
    with pytest.raises(ValueError, match="time_range"):
        generate_kernel(*params, time_range=(3, 3))


CROP_CASES = list(
    itertools.product(
        [1, 2, 3],  # frames
        [3, 5],  # temporal kernel depth
        [1, 2],  # temporal stride
        [1, 2],  # temporal dilation
    )
)


@pytest.mark.parametrize(("frames", "depth", "stride", "dilation"), CROP_CASES)
def test_short_clips_give_conv3d_outputs_and_gradients(frames, depth, stride, dilation):
    """Slices that only meet temporal zero padding are skipped; outputs and all gradients are unchanged."""
    padding = dilation * (depth - 1) // 2
    layer = randomized(
        Conv3T(2, 3, (depth, 3, 3), stride=(stride, 1, 1), padding=(padding, 1, 1), dilation=(dilation, 1, 1)).double(),
        seed=frames,
    )
    x = torch.randn(2, 2, frames, 5, 5, dtype=torch.float64, requires_grad=True)
    params = [x, layer.weight, layer.scale, layer.rotation, layer.translation_x, layer.translation_y, layer.bias]
    y = layer(x)
    want = F.conv3d(x, layer.kernel(), layer.bias, layer.stride, layer.padding, layer.dilation)
    torch.testing.assert_close(y, want, atol=1e-12, rtol=1e-10)
    g = torch.randn_like(y)
    for a, b in zip(torch.autograd.grad(y, params, g), torch.autograd.grad(want, params, g), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_one_frame_input_generates_only_the_middle_slice(generations, monkeypatch):
    seen = []

    def recording(*args, **kwargs):
        out = generate_kernel(*args, **kwargs)
        seen.append(out.shape[2])
        return out

    monkeypatch.setattr(conv3t_module, "generate_kernel", recording)
    layer = randomized(Conv3T(4, 4, 3, padding=1))
    layer(torch.randn(2, 4, 1, 4, 4))
    layer(torch.randn(2, 4, 6, 4, 4))
    assert seen == [1, 3]


def test_checks_still_run_for_every_new_input_shape():
    """Input checks are done once per input shape; a new (bad) shape is still checked."""
    layer = Conv3T(3, 4, 3)
    layer(torch.randn(1, 3, 4, 6, 6))
    layer(torch.randn(2, 3, 4, 6, 6))  # other batch size: same checks
    with pytest.raises(ValueError, match="expects 3 input channels, got 2"):
        layer(torch.randn(1, 2, 4, 6, 6))
    with pytest.raises(ValueError, match="along T"):
        layer(torch.randn(1, 3, 2, 6, 6))


def test_temporal_crop_switch(monkeypatch):
    seen = []

    def recording(*args, **kwargs):
        seen.append(kwargs.get("time_range", args[7] if len(args) > 7 else None))
        return generate_kernel(*args, **kwargs)

    monkeypatch.setattr(conv3t_module, "generate_kernel", recording)
    layer = randomized(Conv3T(4, 4, 3, padding=1))
    x = torch.randn(1, 4, 1, 4, 4)
    y = layer(x)
    layer.temporal_crop = False
    torch.testing.assert_close(layer(x), y, atol=1e-6, rtol=1e-5)
    assert seen == [(1, 2), None]
