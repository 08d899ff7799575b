"""Channel attribution, Grad-CAM and frame importance against hand-computed values on tiny linear models."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from conv3t.explain.methods.attribution import ChannelAttribution, frame_importance, grad_cam, gradcam_layer
from conv3t.explain.report.analysis import explain_predictions


class SumPool(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2).sum(2)


def linear_model() -> nn.Sequential:
    """x (N, 1, T, H, W) -> conv: A_c = a_c x (a = 2, 3) -> f_c = sum A_c -> logits = W f."""
    conv = nn.Conv3d(1, 2, 1, bias=False)
    fc = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 3.0]).view(2, 1, 1, 1, 1))
        fc.weight.copy_(torch.tensor([[1.0, 0.5], [-1.0, 2.0]]))
    return nn.Sequential(conv, SumPool(), fc).eval()


def test_channel_attribution_is_weight_times_channel_sum():
    model = linear_model()
    x = torch.rand(3, 1, 4, 5, 5)
    s = x.flatten(1).sum(1)  # sum of each clip
    attr = ChannelAttribution(model, ["0"]).attribute(x, target=[0, 1, 0])["0"]
    expected = torch.stack(
        [torch.stack([1.0 * 2 * s[0], 0.5 * 3 * s[0]]), torch.stack([-1.0 * 2 * s[1], 2.0 * 3 * s[1]])]
    )
    expected = torch.cat([expected, torch.stack([1.0 * 2 * s[2], 0.5 * 3 * s[2]])[None]])
    torch.testing.assert_close(attr, expected, rtol=1e-5, atol=1e-5)
    # linear and bias-free: the attributions add up to the logit
    logits = model(x)
    torch.testing.assert_close(attr.sum(1), logits[torch.arange(3), torch.tensor([0, 1, 0])], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not modules"):
        ChannelAttribution(model, ["nope"])
    with pytest.raises(ValueError, match="one class or one per clip"):
        ChannelAttribution(model, ["0"]).attribute(x, target=[0, 1])


class FrameModel(nn.Module):
    """The logit of class 0 is the sum of frame 2 only; class 1 the sum of frame 0."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 1, bias=False)
        nn.init.ones_(self.conv.weight)

    def forward(self, x: Tensor) -> Tensor:
        a = self.conv(x)
        return torch.stack([a[:, 0, 2].sum((1, 2)), a[:, 0, 0].sum((1, 2))], dim=1)


def test_frame_importance_finds_the_only_frame_that_matters():
    x = torch.rand(2, 1, 4, 6, 6) + 0.1
    imp = frame_importance(FrameModel(), x, target=[0, 1])
    torch.testing.assert_close(imp, torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))


def test_grad_cam_peaks_where_and_when_the_evidence_is():
    x = torch.zeros(1, 1, 4, 8, 8)
    x[0, 0, 2, 5, 6] = 1.0  # one bright pixel in frame 2
    x[0, 0, 0, 1, 1] = 0.2  # a weaker one in frame 0 that class 1 reads, class 0 does not
    cam = grad_cam(FrameModel(), "conv", x, target=0)
    assert cam.shape == (1, 4, 8, 8)
    assert float(cam.max()) == pytest.approx(1.0)
    assert tuple((cam[0] == cam[0].max()).nonzero()[0].tolist()) == (2, 5, 6)


def test_gradcam_layer_is_the_deepest_with_a_usable_map():
    model = nn.Sequential(
        nn.Conv3d(3, 4, 3, padding=1),  # 8 x 16 x 16
        nn.Conv3d(4, 4, 3, stride=2, padding=1),  # 4 x 8 x 8
        nn.Conv3d(4, 4, 3, stride=2, padding=1),  # 2 x 4 x 4: too coarse
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    assert gradcam_layer(model, ["0", "1", "2"], (3, 8, 16, 16)) == "1"
    assert gradcam_layer(model, ["2"], (3, 8, 16, 16)) == "2"  # none fits: the first given


def test_explain_predictions_records():
    model = linear_model()
    x = torch.rand(2, 1, 4, 8, 8)
    records = explain_predictions(
        model, x, ["a.mp4", "b.mp4"], ["left", "right"], ["0"], top_channels=1, frame_method="input_x_gradient"
    )
    logits = model(x).detach()
    for rec, lg in zip(records, logits):
        probs = torch.softmax(lg, 0)
        assert rec.top[0]["class"] == ["left", "right"][int(probs.argmax())]
        assert rec.top[0]["probability"] == pytest.approx(float(probs.max()), rel=1e-5)
        assert len(rec.channels) == 1 and rec.channels[0]["layer"] == "0"
        assert sum(rec.frame_importance) == pytest.approx(1.0)
        assert rec.target == int(probs.argmax())
        assert set(rec.to_json()) == {"video", "top", "target", "channels", "frame_importance", "frame_method"}
        assert rec.frame_method == "input_x_gradient" and rec.frame_comparison is None  # no comparison beside it
        assert rec.cam is not None and rec.cam.shape == (4, 8, 8)


def three_logit_model() -> nn.Sequential:
    """Logits ``(0, 1, 5) * sum(x)`` through a 1x1x1 convolution ("0"): class 2 wins on positive clips."""
    fc = nn.Linear(1, 3, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[0.0], [1.0], [5.0]]))
    return nn.Sequential(nn.Conv3d(1, 1, 1, bias=False), SumPool(), fc).eval()


def test_the_record_carries_the_top_class_index_not_only_its_name():
    model = three_logit_model()
    nn.init.ones_(model[0].weight)
    # two names for three logits: the winner (logit 2) has no name of its own, so its name cannot identify it
    records = explain_predictions(model, torch.rand(1, 1, 4, 8, 8) + 0.5, ["a.mp4"], ["x", "y"], ["0"])
    assert records[0].target == 2 and records[0].top[0]["class"] == "2"
    assert records[0].to_json()["target"] == 2
