"""Conv3T as a module: nn.Conv3d's arguments and output shapes, padding modes, errors, state and dtypes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conv3t import Conv3T

from .test_conv3t_kernel import randomize

ARGUMENTS = [
    dict(kernel_size=3),
    dict(kernel_size=(2, 3, 5)),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 5, 3), stride=(1, 2, 3), padding=(0, 2, 1)),
    dict(kernel_size=3, dilation=2, padding=2),
    dict(kernel_size=(3, 3, 3), dilation=(1, 2, 1), padding="same"),
    dict(kernel_size=(4, 3, 3), padding="same"),  # asymmetric 'same' padding in time
    dict(kernel_size=3, padding="valid"),
    dict(kernel_size=3, groups=2, padding=1),
    dict(kernel_size=3, bias=False),
    dict(kernel_size=(1, 3, 3), padding=(0, 1, 1)),
    dict(kernel_size=(7, 7, 7), stride=2, padding=3),
]
PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]


@pytest.mark.parametrize(("kwargs", "padding_mode"), list(itertools.product(ARGUMENTS, PADDING_MODES)))
def test_forward_equals_conv3d_with_generated_kernel(kwargs, padding_mode):
    torch.manual_seed(0)
    cin, cout = 4, 6
    layer = randomize(Conv3T(cin, cout, padding_mode=padding_mode, **kwargs), seed=2)
    reference = nn.Conv3d(cin, cout, padding_mode=padding_mode, **kwargs)
    with torch.no_grad():
        reference.weight.copy_(layer.kernel())
        if layer.bias is not None:
            reference.bias.copy_(layer.bias)
    x = torch.randn(2, cin, 9, 11, 10)
    y = layer(x)
    torch.testing.assert_close(y, reference(x), atol=1e-5, rtol=1e-5)
    if padding_mode == "zeros":
        direct = F.conv3d(x, layer.kernel(), layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)
        torch.testing.assert_close(y, direct)


def test_unbatched_input():
    layer = Conv3T(3, 2, 3, padding=1)
    x = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(layer(x), layer(x.unsqueeze(0)).squeeze(0))


def test_static_clip_gives_depth_times_the_2d_convolution():
    torch.manual_seed(0)
    depth = 3
    layer = Conv3T(3, 5, (depth, 3, 3), padding=(1, 1, 1), bias=False)
    frame = torch.randn(1, 3, 8, 8)
    clip = frame.unsqueeze(2).expand(1, 3, 6, 8, 8)
    out = layer(clip)
    conv2d = F.conv2d(frame, layer.weight, padding=1)
    for t in range(1, 5):  # interior steps see D real frames
        torch.testing.assert_close(out[:, :, t], depth * conv2d, atol=1e-5, rtol=1e-5)
    # the border steps see zero padding in time: only D - 1 frames contribute
    torch.testing.assert_close(out[:, :, 0], (depth - 1) * conv2d, atol=1e-5, rtol=1e-5)


def test_rejects_spatially_1x1_kernels_with_depth():
    with pytest.raises(ValueError, match="1x1"):
        Conv3T(3, 4, (3, 1, 1))
    Conv3T(3, 4, (1, 1, 1))  # a per-frame 1x1 convolution is fine


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), "divisible by groups"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, padding="full"), "padding"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding="same"), "strided"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, padding_mode="mirror"), "padding_mode"),
        (dict(in_channels=3, out_channels=4, kernel_size=(3, 3)), "kernel_size"),
        (dict(in_channels=3, out_channels=4, kernel_size=0), ">= 1"),
    ],
)
def test_bad_construction_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv3T(**kwargs)


def test_bad_inputs_have_clear_errors():
    layer = Conv3T(3, 4, 3)
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\).*3-D"):
        layer(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match="expects 3 input channels, got 2"):
        layer(torch.randn(1, 2, 8, 8, 8))
    with pytest.raises(ValueError, match=r"along T.*larger than the padded input"):
        layer(torch.randn(1, 3, 2, 8, 8))
    padded = Conv3T(3, 4, 3, padding=1)
    padded(torch.randn(1, 3, 1, 1, 1))  # padding makes room: valid


def test_output_shape_matches_conv3d_over_many_sizes():
    for t, h, w in [(16, 112, 112), (30, 150, 224), (5, 9, 13)]:
        x = torch.empty(1, 2, t, h, w)
        for kwargs in ARGUMENTS:
            if kwargs.get("groups"):
                continue
            ref = nn.Conv3d(2, 2, **kwargs).to("meta")
            layer = Conv3T(2, 2, **kwargs).to("meta")
            assert layer(x.to("meta")).shape == ref(x.to("meta")).shape


def test_state_dict_round_trip_and_names():
    a = randomize(Conv3T(3, 4, (3, 3, 3)), seed=4)
    b = Conv3T(3, 4, (3, 3, 3))
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"weight", "scale", "rotation", "translation_x", "translation_y", "bias"}
    x = torch.randn(1, 3, 4, 6, 6)
    torch.testing.assert_close(a(x), b(x))


def test_reset_parameters_restores_identity_and_conv3d_scale():
    torch.manual_seed(0)
    layer = randomize(Conv3T(64, 64, 3), seed=1)
    layer.reset_parameters()
    assert torch.equal(layer.scale, torch.ones_like(layer.scale))
    assert torch.count_nonzero(layer.rotation) == 0
    ref = nn.Conv3d(64, 64, 3)
    # same bound as nn.Conv3d's kaiming_uniform(a=sqrt(5)) on the full 3D fan-in
    assert layer.weight.abs().max() <= ref.weight.abs().max() * 1.05
    assert layer.weight.std().item() == pytest.approx(ref.weight.std().item(), rel=0.1)


def test_extra_repr_and_to():
    layer = Conv3T(3, 4, (3, 5, 5), stride=2, padding=2, bias=False, padding_mode="replicate")
    text = repr(layer)
    assert "Conv3T(3, 4, kernel_size=(3, 5, 5), stride=(2, 2, 2), padding=(2, 2, 2)" in text
    assert "bias=False" in text and "replicate" in text
    double = layer.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in double.parameters())
    assert double(torch.randn(1, 3, 4, 8, 8, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_the_convolution_in_low_precision(dtype):
    layer = randomize(Conv3T(3, 4, 3, padding=1), seed=6)
    x = torch.randn(1, 3, 5, 8, 8)
    expected = layer(x)
    with torch.autocast("cpu", dtype=dtype):
        y = layer(x)
        k = layer.kernel()
    assert k.dtype == torch.float32  # kernel generation stays in full precision
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), expected, atol=0.1, rtol=0.05)


def test_trains_like_a_module():
    torch.manual_seed(0)
    layer = Conv3T(2, 2, 3, padding=1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(2, 2, 4, 6, 6)
    before = [p.detach().clone() for p in (layer.scale, layer.rotation)]
    layer(x).square().mean().backward()
    opt.step()
    assert not torch.equal(before[0], layer.scale) and not torch.equal(before[1], layer.rotation)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    layer = randomize(Conv3T(3, 4, 3, padding=1), seed=8)
    x = torch.randn(2, 3, 5, 8, 8)
    torch.testing.assert_close(layer.cuda()(x.cuda()).cpu(), layer.cpu()(x), atol=1e-4, rtol=1e-4)
