"""Video GoogLeNets: torchvision layout, the paper's configuration, auxiliary heads, outputs, clip sizes."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import conv3t.models.googlenet as googlenet_module
from conv3t import Conv3T
from conv3t.models import GoogLeNet, GoogLeNetOutputs, googlenet_3d, googlenet_3t, minimum_clip_size

TEMPORAL = {"scale", "rotation", "translation_x", "translation_y"}


@pytest.fixture(scope="module")
def g3t() -> GoogLeNet:
    torch.manual_seed(0)
    return googlenet_3t(27)


@pytest.fixture(scope="module")
def g3d() -> GoogLeNet:
    torch.manual_seed(0)
    return googlenet_3d(27)


@pytest.fixture(scope="module")
def tv_googlenet() -> nn.Module:
    return torchvision.models.GoogLeNet(num_classes=27, aux_logits=True, init_weights=False)


def _keys_without_temporal(model: nn.Module) -> set[str]:
    return {k for k in model.state_dict() if k.rsplit(".", 1)[1] not in TEMPORAL}


@pytest.mark.parametrize("variant", ["3t", "3d"])
def test_state_dict_keys_map_one_to_one_onto_torchvision(variant, g3t, g3d, tv_googlenet):
    model = g3t if variant == "3t" else g3d
    assert _keys_without_temporal(model) == set(tv_googlenet.state_dict())


def test_without_aux_heads_keys_are_torchvision_minus_aux(tv_googlenet):
    with torch.device("meta"):
        model = googlenet_3t(27, aux_logits=False)
    assert model.aux1 is None and model.aux2 is None
    expected = {k for k in tv_googlenet.state_dict() if not k.startswith("aux")}
    assert _keys_without_temporal(model) == expected


@pytest.mark.parametrize("variant", ["3t", "3d"])
def test_every_2d_conv_becomes_k_x_k_x_k(variant, g3t, g3d, tv_googlenet):
    model = g3t if variant == "3t" else g3d
    convs = {n: m for n, m in tv_googlenet.named_modules() if isinstance(m, nn.Conv2d)}
    assert len(convs) == 59
    for name, conv2d in convs.items():
        conv = model.get_submodule(name)
        k, s, p = conv2d.kernel_size[0], conv2d.stride[0], conv2d.padding[0]
        assert type(conv) is (Conv3T if (k > 1 and variant == "3t") else nn.Conv3d), name
        assert (tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding)) == ((k,) * 3, (s,) * 3, (p,) * 3)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert len(bns) == 59 and all(bn.eps == 0.001 for bn in bns)


def test_pools_and_heads_follow_the_paper(g3t):
    for pool in (g3t.maxpool1, g3t.maxpool2):
        assert (pool.kernel_size, pool.stride, pool.ceil_mode) == ((1, 3, 3), (1, 2, 2), True)
    for pool in (g3t.maxpool3, g3t.maxpool4):
        assert (pool.kernel_size, pool.stride, pool.ceil_mode) == (3, 2, True)
    branch_pool = g3t.inception4c.branch4[0]
    assert (branch_pool.kernel_size, branch_pool.stride, branch_pool.padding) == (3, 1, 1)
    for aux, channels in ((g3t.aux1, 512), (g3t.aux2, 528)):
        assert aux.conv.conv.in_channels == channels and aux.conv.conv.out_channels == 128
        assert (aux.fc1.in_features, aux.fc1.out_features) == (768, 1024)
        assert (aux.fc2.in_features, aux.fc2.out_features) == (1024, 27)
        assert aux.dropout.p == 0.7
    assert g3t.dropout.p == 0.4 and g3t.fc.in_features == 1024 and not g3t.transform_input


def test_3t_count_is_2d_count_with_768_input_aux_heads_plus_temporal(g3t, tv_googlenet):
    convs = [m for m in tv_googlenet.modules() if isinstance(m, nn.Conv2d)]
    temporal = sum(4 * (c.kernel_size[0] - 1) * c.out_channels for c in convs)
    aux_fc1_difference = 2 * (2048 - 768) * 1024
    count_2d = sum(p.numel() for p in tv_googlenet.parameters())
    assert sum(p.numel() for p in g3t.parameters()) == count_2d - aux_fc1_difference + temporal


def test_3d_count_is_2d_count_with_kernels_times_depth(g3d, tv_googlenet):
    convs = [m for m in tv_googlenet.modules() if isinstance(m, nn.Conv2d)]
    extra = sum((c.kernel_size[0] - 1) * c.weight.numel() for c in convs)
    count_2d = sum(p.numel() for p in tv_googlenet.parameters())
    assert sum(p.numel() for p in g3d.parameters()) == count_2d - 2 * (2048 - 768) * 1024 + extra


def test_scratch_init_truncated_normal_and_identity_transforms(g3t):
    w = torch.cat([m.weight.flatten() for m in g3t.modules() if isinstance(m, Conv3T | nn.Conv3d | nn.Linear)])
    assert w.std().item() == pytest.approx(0.01, rel=0.02)
    assert w.abs().max() <= 2.0
    for m in g3t.modules():
        if isinstance(m, Conv3T):
            assert torch.equal(m.scale, torch.ones_like(m.scale))
            assert torch.count_nonzero(m.rotation) + torch.count_nonzero(m.translation_x) == 0
            assert torch.count_nonzero(m.translation_y) == 0


def test_training_mode_returns_main_and_aux_logits_eval_mode_only_main(g3t):
    x = torch.randn(2, 3, 7, 31, 31)
    g3t.train()
    out = g3t(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(t.shape == (2, 27) for t in out)
    loss = out.logits.sum() + 0.3 * (out.aux_logits1.sum() + out.aux_logits2.sum())
    loss.backward()
    assert g3t.aux1.fc1.weight.grad is not None and g3t.conv1.conv.rotation.grad is not None
    g3t.zero_grad(set_to_none=True)
    g3t.eval()
    with torch.no_grad():
        logits = g3t(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 27)


def test_without_aux_heads_training_mode_returns_a_tensor():
    model = googlenet_3d(5, aux_logits=False).train()
    out = model(torch.randn(2, 3, 8, 40, 48))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)


@pytest.mark.parametrize("clip", [(16, 112, 112), (16, 64, 64), (9, 47, 81)])
def test_small_and_odd_clips(clip, g3t):
    with torch.no_grad():
        out = g3t.eval()(torch.randn(1, 3, *clip))
    assert out.shape == (1, 27) and torch.isfinite(out).all()


@pytest.mark.parametrize("clip", [(30, 150, 224), (30, 168, 224)])
@pytest.mark.parametrize("variant", ["3t", "3d"])
def test_paper_clips_shapes_with_aux_heads(variant, clip):
    # Shapes on the meta device (no compute); test_paper_clip_forward runs real numbers.
    with torch.device("meta"):
        model = (googlenet_3t if variant == "3t" else googlenet_3d)(101).train()
        out = model(torch.empty(2, 3, *clip))
    assert [t.shape for t in out] == [(2, 101)] * 3


@pytest.mark.slow
def test_paper_clip_forward(g3d):
    # UCF101's 30 x 168 x 224 clips, batch 1, eval mode (about 5-9 s on 2 cores).
    with torch.no_grad():
        out = g3d.eval()(torch.randn(1, 3, 30, 168, 224))
    assert out.shape == (1, 27) and torch.isfinite(out).all()


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("style", ["torchvision", "authors"])
def test_minimum_clip_size_is_exactly_what_the_pools_allow(stride, style, monkeypatch):
    smallest = minimum_clip_size(stride, style)
    if style == "torchvision":
        assert smallest == ((4 if stride == 1 else 7), 31, 31)
    else:  # max-pools that round down need about twice the size
        assert smallest == ((7 if stride == 1 else 13), 61, 61)
    with torch.device("meta"):
        model = googlenet_3t(5, stem_temporal_stride=stride, style=style).eval()
        assert model(torch.empty(1, 3, *smallest)).shape == (1, 5)
        for axis in range(3):
            clip = list(smallest)
            clip[axis] -= 1
            with pytest.raises(ValueError, match="too small for GoogLeNet"):
                model(torch.empty(1, 3, *clip))
            # Without our check PyTorch's own pooling fails there too.
            monkeypatch.setattr(googlenet_module, "minimum_clip_size", lambda *_: (1, 1, 1))
            with pytest.raises(RuntimeError):
                model(torch.empty(1, 3, *clip))
            monkeypatch.undo()


def test_stem_temporal_stride(g3t):
    model = googlenet_3t(5, stem_temporal_stride=1)
    assert model.conv1.conv.stride == (1, 2, 2) and g3t.conv1.conv.stride == (2, 2, 2)


def test_transform_input_maps_imagenet_normalisation_to_minus_one_one(g3d):
    pixels = torch.rand(1, 3, 7, 31, 31)  # in [0, 1]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
    g3d.eval()
    with torch.no_grad():
        expected = g3d(pixels * 2 - 1)  # what torchvision's ImageNet GoogLeNet weights were trained on
        g3d.transform_input = True
        try:
            actual = g3d((pixels - mean) / std)
        finally:
            g3d.transform_input = False
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(N, 3, T, H, W\)"):
        googlenet_3t(5, aux_logits=False)(torch.randn(3, 8, 64, 64))
    with pytest.raises(ValueError, match="stem_temporal_stride"):
        googlenet_3t(5, stem_temporal_stride=4)
