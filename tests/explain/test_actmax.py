"""Activation maximisation on a tiny network: it works, it is seeded, and its parameterisation is what it says."""

import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.explain.methods.actmax import (
    ActivationMaximization,
    _color_mixing,
    _frequency_scale,
    color_covariance,
    default_color_covariance,
)

MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


def tiny_model(kind: str = "3t") -> nn.Module:
    torch.manual_seed(0)
    conv = Conv3T if kind == "3t" else nn.Conv3d
    return nn.Sequential(
        conv(3, 6, 3, padding=1),
        nn.ReLU(),
        conv(6, 6, 3, stride=(1, 2, 2), padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(6, 2),
    ).eval()


def make(model: nn.Module, layer: str, **kw) -> ActivationMaximization:
    return ActivationMaximization(model, layer, num_frames=4, size=(20, 20), mean=MEAN, std=STD, **kw)


@pytest.mark.parametrize("layer", ["0", "2"])
def test_raises_activation_far_above_random_inputs(layer):
    model = tiny_model()
    am = make(model, layer)
    base = am.random_baseline([1, 4], n=16, seed=3)  # (16, 2)
    result = am.optimize([1, 4], steps=32, seed=0)
    assert result.pixels.shape == (2, 3, 4, 20, 20)
    assert result.pixels.min() >= 0 and result.pixels.max() <= 1
    # far above anything random pixels reach, by many standard deviations
    assert (result.activation > base.max(0).values + 5 * base.std(0)).all(), (result.activation, base)
    assert (result.history[-1] > result.history[0]).all()
    # the reported activation is mean(relu(A)) + 0.01 mean(A) of the channel for the returned pixels
    with torch.no_grad():
        out = am.layer_output((result.pixels - torch.tensor(MEAN).view(1, 3, 1, 1, 1)) / STD[0])
    a = out[[0, 1], [1, 4]].flatten(1)
    torch.testing.assert_close(result.activation, a.clamp_min(0).mean(1) + 0.01 * a.mean(1))
    # the optimum is far above the mean activation random pixels give, also for the plain activation
    with torch.no_grad():
        rand = am.layer_output((torch.rand(16, 3, 4, 20, 20) - 0.45) / 0.225)[:, [1, 4]].flatten(2).mean(2)
    assert (a.mean(1) > rand.max(0).values).all()


def test_deterministic_under_a_seed():
    model = tiny_model()
    a = make(model, "2").optimize(3, steps=8, seed=7)
    b = make(model, "2").optimize(3, steps=8, seed=7)
    c = make(model, "2").optimize(3, steps=8, seed=8)
    assert torch.equal(a.pixels, b.pixels) and torch.equal(a.history, b.history)
    assert not torch.equal(a.pixels, c.pixels)


def test_single_frame_for_3t_video_for_3d():
    am3t = make(tiny_model("3t"), "0")
    assert am3t.single_frame
    r = am3t.optimize(0, steps=4)
    assert r.single_frame and torch.equal(r.pixels[:, :, :1].expand_as(r.pixels), r.pixels)
    am3d = make(tiny_model("3d"), "0")
    assert not am3d.single_frame
    r = am3d.optimize(0, steps=4)
    assert not r.single_frame and (r.pixels[:, :, 0] - r.pixels[:, :, 1]).abs().max() > 1e-3


def test_model_is_left_as_it_was():
    model = tiny_model()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    make(model, "2").optimize(0, steps=3)
    assert model.training
    assert all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_frequency_scale_is_one_over_f_with_unit_rms():
    s = _frequency_scale((8, 16), decay=1.0)
    assert s.shape == (8, 9)
    torch.testing.assert_close(s.pow(2).mean(), torch.tensor(1.0))
    # f = 1/16 at (0, 1) and 1/8 at (1, 0) or (0, 2): half the weight; DC is floored at 1/16 like (0, 1)
    torch.testing.assert_close(s[0, 1] / s[1, 0], torch.tensor(2.0))
    torch.testing.assert_close(s[0, 1] / s[0, 2], torch.tensor(2.0))
    torch.testing.assert_close(s[0, 0], s[0, 1])
    flat = _frequency_scale((8, 16), decay=0.0)
    torch.testing.assert_close(flat, torch.ones(8, 9))


def test_color_mixing_is_the_square_root_of_the_covariance():
    cov = default_color_covariance()
    assert torch.allclose(torch.diag(cov), torch.ones(3)) and cov[0, 1] == pytest.approx(0.85)
    m = _color_mixing(cov)
    ratio = (m @ m.T) / cov
    torch.testing.assert_close(ratio, torch.full((3, 3), float(ratio[0, 0])))  # cov up to one scale factor
    assert m.norm(dim=0).max() == pytest.approx(1.0)
    pixels = torch.rand(3, 2, 5, 5)
    torch.testing.assert_close(color_covariance(pixels), torch.cov(pixels.reshape(3, -1)))


def test_bad_channel_is_named():
    am = make(tiny_model(), "2")
    with pytest.raises(ValueError, match="channel 6 out of range: layer 2 has 6 channels"):
        am.optimize(6, steps=1)
