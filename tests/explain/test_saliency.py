"""Gradient saliency against hand-written autograd on a tiny 3T network."""

import numpy as np
import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.explain.methods.saliency import ChannelSaliency, channel_selector, overlay, saliency_map


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        Conv3T(3, 4, 3, padding=1),
        nn.ReLU(),
        Conv3T(4, 5, 3, stride=(1, 2, 2), padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(5, 2),
    )
    with torch.no_grad():  # move away from the identity so the temporal parameters matter
        for m in model.modules():
            if isinstance(m, Conv3T):
                m.scale.uniform_(0.8, 1.2)
                m.rotation.uniform_(-0.3, 0.3)
                m.translation_x.uniform_(-0.3, 0.3)
                m.translation_y.uniform_(-0.3, 0.3)
    return model.eval()


def hand_gradient(model: nn.Module, layer: nn.Module, clip: torch.Tensor, objective) -> torch.Tensor:
    out = {}
    handle = layer.register_forward_hook(lambda _m, _i, o: out.__setitem__("a", o))
    x = clip.clone().requires_grad_(True)
    model(x)
    handle.remove()
    (g,) = torch.autograd.grad(objective(out["a"]), x)
    return g


@pytest.fixture
def setup():
    model = tiny_model()
    clip = torch.randn(2, 3, 6, 12, 12, generator=torch.Generator().manual_seed(1))
    return model, clip


def test_sum_selector_matches_autograd(setup):
    model, clip = setup
    sal = ChannelSaliency(model, "2")
    got = sal.attribute(clip, channel=3)
    want = hand_gradient(model, model[2], clip, lambda a: a[:, 3].clamp_min(0).sum())
    assert got.shape == clip.shape
    assert want.abs().max() > 0
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    raw = sal.attribute(clip, channel=3, rectify=False)
    torch.testing.assert_close(raw, hand_gradient(model, model[2], clip, lambda a: a[:, 3].sum()), rtol=1e-5, atol=1e-7)
    assert not torch.allclose(raw, got)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())  # weights untouched


def test_rectified_first_layer_saliency_follows_the_content():
    """A linear layer's plain sum has one gradient everywhere; the rectified one only where the filter fires."""
    conv = Conv3T(3, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    model = nn.Sequential(conv).eval()
    clip = torch.full((1, 3, 5, 16, 16), -1.0)
    clip[..., 4:8, 4:8] = 1.0  # a bright square on a dark background
    sal = ChannelSaliency(model, "0")
    heat = sal.attribute(clip, 0).abs().sum(dim=(0, 1, 2))
    assert heat[5, 5] > 0 and heat[12, 12] == 0
    plain = sal.attribute(clip, 0, rectify=False).abs().sum(dim=(0, 1, 2))
    assert plain[12, 12] == plain[8, 8] > 0


def test_each_example_gets_its_own_gradient(setup):
    model, clip = setup
    sal = ChannelSaliency(model, model[2])
    both = sal.attribute(clip, channel=1)
    second = sal.attribute(clip[1:], channel=1)
    torch.testing.assert_close(both[1:], second, rtol=1e-5, atol=1e-7)


def test_max_and_time_selectors_match_autograd(setup):
    model, clip = setup
    sal = ChannelSaliency(model, "0")
    got = sal.attribute(clip, channel=2, reduce="max")
    want = hand_gradient(model, model[0], clip, lambda a: a[:, 2].reshape(2, -1).amax(1).clamp_min(0).sum())
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    got_t = sal.attribute(clip, channel=2, time_index=4)
    want_t = hand_gradient(model, model[0], clip, lambda a: a[:, 2, 4].clamp_min(0).sum())
    torch.testing.assert_close(got_t, want_t, rtol=1e-5, atol=1e-7)
    # the first layer has a temporal receptive field of 3 frames: frames outside 3..5 get nothing
    assert got_t[:, :, :3].abs().max() == 0
    assert got_t[:, :, 3:].abs().amax(dim=(0, 1, 3, 4)).min() > 0


def test_peak_frame_definition(setup):
    model, clip = setup
    sal = ChannelSaliency(model, "2")
    peak = sal.peak_frame(clip[0], channel=4)
    act = sal.activation(clip[:1])[0, 4].clamp_min(0).mean(dim=(-2, -1))
    tau = int(act.argmax())
    assert peak.time_index == tau
    torch.testing.assert_close(peak.activation, act)
    grad = hand_gradient(model, model[2], clip[:1], lambda a: a[:, 4, tau].clamp_min(0).sum())[0]
    energy = grad.abs().sum(dim=(0, 2, 3))
    assert peak.frame_index == int(energy.argmax())
    torch.testing.assert_close(peak.gradient, grad[:, peak.frame_index], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(peak.frame, clip[0, :, peak.frame_index])
    raw = sal.peak_frame(clip[0], channel=4, rectify=False)
    tau_raw = int(sal.activation(clip[:1])[0, 4].mean(dim=(-2, -1)).argmax())
    grad_raw = hand_gradient(model, model[2], clip[:1], lambda a: a[:, 4, tau_raw].sum())[0]
    assert raw.time_index == tau_raw and raw.frame_index == int(grad_raw.abs().sum(dim=(0, 2, 3)).argmax())


def test_bad_arguments_are_named(setup):
    model, clip = setup
    with pytest.raises(ValueError, match="layer 'nope' not found"):
        ChannelSaliency(model, "nope")
    sal = ChannelSaliency(model, "2")
    with pytest.raises(ValueError, match="channel 9 out of range"):
        sal.attribute(clip, channel=9)
    with pytest.raises(ValueError, match="reduce"):
        channel_selector(0, reduce="mean")  # type: ignore[arg-type]


def test_saliency_map_and_overlay():
    g = torch.zeros(3, 2, 4, 4)
    g[1, 0, 1, 2] = -4.0
    g[0, 1, 3, 3] = 2.0
    heat = saliency_map(g)
    assert heat.shape == (2, 4, 4)
    assert heat[0, 1, 2] == 1.0 and heat[1, 3, 3] == 0.5 and heat.sum() == 1.5
    image = torch.full((3, 4, 4), 0.5)
    rgb = overlay(image, heat[0], alpha=1.0, gamma=1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 4, 3)
    assert (rgb[0, 0] == 128).all()  # no heat: the image shows through unchanged
    assert not (rgb[1, 2] == 128).all()


class Boom(nn.Module):
    def forward(self, x):
        raise AssertionError("the network ran past the explained layer")


def test_network_runs_only_up_to_the_layer(setup):
    model, clip = setup
    cut = nn.Sequential(*model[:3], Boom())
    sal = ChannelSaliency(cut, "2")
    torch.testing.assert_close(sal.attribute(clip, 1), ChannelSaliency(model, "2").attribute(clip, 1))
    assert sal.peak_frame(clip[0], 1).frame.shape == (3, 12, 12)
