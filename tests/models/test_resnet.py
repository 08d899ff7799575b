"""Video ResNets: torchvision layout, the paper's layer configuration, init, shapes, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from conv3t import Conv3T
from conv3t.models import ResNet, resnet10_3t, resnet18_3d, resnet18_3t


@pytest.fixture(scope="module")
def r18_3t() -> ResNet:
    torch.manual_seed(0)
    return resnet18_3t(27)


@pytest.fixture(scope="module")
def r18_3d() -> ResNet:
    torch.manual_seed(0)
    return resnet18_3d(27)


@pytest.fixture(scope="module")
def tv_resnet18() -> nn.Module:
    return torchvision.models.resnet18(num_classes=27)


def _spatial_convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.mark.parametrize("variant", ["3t", "3d"])
def test_state_dict_keys_map_one_to_one_onto_torchvision(variant, r18_3t, r18_3d, tv_resnet18):
    model = r18_3t if variant == "3t" else r18_3d
    temporal = {"scale", "rotation", "translation_x", "translation_y"}
    keys = {k for k in model.state_dict() if k.rsplit(".", 1)[1] not in temporal}
    assert keys == set(tv_resnet18.state_dict())


@pytest.mark.parametrize("variant", ["3t", "3d"])
def test_every_2d_conv_becomes_k_x_k_x_k_with_the_same_stride_in_time(variant, r18_3t, r18_3d, tv_resnet18):
    model = r18_3t if variant == "3t" else r18_3d
    for name, conv2d in _spatial_convs(tv_resnet18).items():
        conv = model.get_submodule(name)
        k, s, p = conv2d.kernel_size[0], conv2d.stride[0], conv2d.padding[0]
        expected_type = Conv3T if (k > 1 and variant == "3t") else nn.Conv3d
        assert type(conv) is expected_type, name
        assert tuple(conv.kernel_size) == (k, k, k), name
        assert tuple(conv.stride) == (s, s, s), name
        assert tuple(conv.padding) == (p, p, p), name
        assert conv.bias is None
    # The paper's stem: 7x7x7 / stride 2 / padding 3 and a 3x3x3 / stride 2 / padding 1 max-pool.
    assert model.conv1.kernel_size == (7, 7, 7) and model.conv1.stride == (2, 2, 2)
    assert model.layer2[0].downsample[0].stride == (2, 2, 2)
    assert model.layer2[0].downsample[0].kernel_size == (1, 1, 1)
    pool = model.maxpool
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, (2, 2, 2), 1)
    assert all(isinstance(m, nn.BatchNorm3d) for n, m in model.named_modules() if "bn" in n.rsplit(".", 1)[-1])


def test_3t_count_is_2d_count_plus_four_per_step_and_channel(r18_3t, tv_resnet18):
    extra = sum(4 * (c.kernel_size[0] - 1) * c.out_channels for c in _spatial_convs(tv_resnet18).values())
    assert extra == 32_256
    assert sum(p.numel() for p in r18_3t.parameters()) == sum(p.numel() for p in tv_resnet18.parameters()) + extra


def test_3d_count_is_2d_count_with_kernels_times_depth(r18_3d, tv_resnet18):
    extra = sum((c.kernel_size[0] - 1) * c.weight.numel() for c in _spatial_convs(tv_resnet18).values())
    assert sum(p.numel() for p in r18_3d.parameters()) == sum(p.numel() for p in tv_resnet18.parameters()) + extra


def test_scratch_init_temporal_identity_he_normal_fan_out_and_unit_batchnorm(r18_3t, r18_3d):
    for m in r18_3t.modules():
        if isinstance(m, Conv3T):
            assert torch.equal(m.scale, torch.ones_like(m.scale))
            for p in (m.rotation, m.translation_x, m.translation_y):
                assert torch.equal(p, torch.zeros_like(p))
        if isinstance(m, nn.BatchNorm3d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    # He normal, fan_out of the generated 3D kernel: std sqrt(2 / (out * 27)) for a 3x3x3 layer.
    expected = math.sqrt(2 / (512 * 27))
    for model in (r18_3t, r18_3d):
        w = model.layer4[1].conv2.weight
        assert w.mean().abs() < 0.05 * expected
        assert w.std().item() == pytest.approx(expected, rel=0.01)


def test_zero_init_residual_zeroes_the_last_batchnorm_of_each_block():
    model = resnet10_3t(5, base_width=8, zero_init_residual=True)
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        assert torch.count_nonzero(stage[0].bn2.weight) == 0
        assert torch.count_nonzero(stage[0].bn1.weight) == stage[0].bn1.weight.numel()


@pytest.mark.parametrize("variant", ["3t", "3d"])
@pytest.mark.parametrize("clip", [(16, 112, 112), (16, 64, 64)])
def test_small_clips(variant, clip, r18_3t, r18_3d):
    model = (r18_3t if variant == "3t" else r18_3d).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *clip))
    assert out.shape == (1, 27)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("clip", "final"),
    # T: 30 -> 15 (conv1) -> 8 (pool) -> 8 -> 4 -> 2 -> 1; H: 150 -> 75 -> 38 -> 38 -> 19 -> 10 -> 5.
    [((30, 150, 224), (1, 5, 7)), ((30, 168, 224), (1, 6, 7))],
)
@pytest.mark.parametrize("variant", ["3t", "3d"])
def test_paper_clips_shapes(variant, clip, final):
    # Shapes on the meta device (no compute); test_paper_clip_forward runs real numbers.
    with torch.device("meta"):
        model = (resnet18_3t if variant == "3t" else resnet18_3d)(101).eval()
        assert model(torch.empty(2, 3, *clip)).shape == (2, 101)
        assert model.features(torch.empty(2, 3, *clip)).shape == (2, 512, *final)


@pytest.mark.slow
def test_paper_clip_forward(r18_3t):
    # Jester's 30 x 150 x 224 clips, batch 1, eval mode (about 3-7 s on 2 cores).
    with torch.no_grad():
        out = r18_3t.eval()(torch.randn(1, 3, 30, 150, 224))
    assert out.shape == (1, 27) and torch.isfinite(out).all()


@pytest.mark.parametrize(("stride", "time_steps"), [(2, 1), (1, 2)])
def test_stem_temporal_stride_and_base_width(stride, time_steps):
    # T = 16: conv1 and max-pool stride `stride` in time, then layer2..4 halve it: 16 -> 4 -> 1 or 16 -> 2.
    model = resnet10_3t(9, base_width=8, stem_temporal_stride=stride)
    assert model.conv1.stride == (stride, 2, 2) and model.maxpool.stride == (stride, 2, 2)
    assert model.layer4[0].conv2.out_channels == 64 and model.fc.in_features == 64
    feats = model.features(torch.randn(2, 3, 16, 32, 32))
    assert feats.shape == (2, 64, time_steps, 1, 1)


def test_resnet10_has_one_block_per_stage():
    model = resnet10_3t(9, base_width=16)
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == [1, 1, 1, 1]
    assert model.fc.out_features == 9 and model.fc.in_features == 128


def test_training_step_reaches_temporal_parameters():
    torch.manual_seed(0)
    model = resnet10_3t(4, base_width=8).train()
    x = torch.randn(2, 3, 8, 32, 32)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 3]))
    loss.backward()
    grads = [m.translation_x.grad for m in model.modules() if isinstance(m, Conv3T)]
    assert len(grads) == 9 and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="variant"):
        ResNet(variant="2d")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stem_temporal_stride"):
        resnet10_3t(5, stem_temporal_stride=3)
    with pytest.raises(ValueError, match="base_width"):
        resnet10_3t(5, base_width=0)
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\)"):
        resnet10_3t(5, base_width=8)(torch.randn(3, 8, 32, 32))
