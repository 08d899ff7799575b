"""convert / verify_conversion on small models: weights, the report, the equivalence check, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from conv3t import Conv3T
from conv3t.models import count_parameters
from conv3t.models.conversion import (
    ConversionError,
    EquivalenceError,
    TimePaddedConv3T,
    convert,
    verify_conversion,
)
from tests.models.convert_helpers import FunctionalNet, calibrate

EXACT = {"inflate": "mean", "temporal_padding": "replicate", "image_size": 32}


@pytest.fixture(scope="module")
def functional_net() -> nn.Module:
    torch.manual_seed(0)
    return calibrate(FunctionalNet())


@pytest.mark.parametrize("kind", ["3t", "3d"])
def test_functional_model_converts_and_reproduces_the_2d_logits(functional_net, kind):
    video = convert(functional_net, kind, **EXACT)
    report = video.conversion_report
    assert report.verified.startswith("passed")
    ops = {o.op for o in report.ops}
    assert {"F.max_pool2d", "F.avg_pool2d", "F.interpolate", "F.adaptive_max_pool2d", "Tensor.mean"} <= ops
    mean = next(o for o in report.ops if o.op == "Tensor.mean")
    assert mean.into == "dims (2, 3) -> (2, 3, 4) (pools over time too)"
    # an independent look at the logits: a clip constant in time, by hand
    images = torch.randn(3, 3, 20, 28)
    clip = images.unsqueeze(2).repeat(1, 1, 5, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(video.eval()(clip), functional_net(images), rtol=1e-4, atol=1e-5)


def test_the_2d_model_is_left_untouched(functional_net):
    before = {k: v.clone() for k, v in functional_net.state_dict().items()}
    convert(functional_net, "3t", **EXACT)
    assert all(torch.equal(before[k], v) for k, v in functional_net.state_dict().items())
    assert isinstance(functional_net.stem, nn.Conv2d)


@pytest.mark.parametrize("inflate", ["repeat", "mean"])
def test_weights_are_transferred_as_documented(functional_net, inflate):
    v3t = convert(functional_net, "3t", inflate=inflate, time_kernel=5, check=False)
    v3d = convert(functional_net, "3d", inflate=inflate, time_kernel=5, check=False)
    w = functional_net.branch.weight
    divisor = 5 if inflate == "mean" else 1
    assert isinstance(v3t.branch, Conv3T) and v3t.branch.kernel_size == (5, 3, 5)
    torch.testing.assert_close(v3t.branch.weight, w / divisor)
    assert torch.equal(v3t.branch.scale, torch.ones(8, 4)) and not v3t.branch.rotation.any()
    assert v3d.branch.weight.shape == (8, 8, 5, 3, 5)
    for step in range(5):
        torch.testing.assert_close(v3d.branch.weight[:, :, step], w / divisor)
    # 1x1 convolutions stay 1x1x1 in both kinds; BatchNorm keeps its statistics
    assert type(v3t.mix) is nn.Conv3d and v3t.mix.kernel_size == (1, 1, 1)
    torch.testing.assert_close(v3t.mix.weight[:, :, 0], functional_net.mix.weight)
    assert type(v3t.bn) is nn.BatchNorm3d
    torch.testing.assert_close(v3t.bn.running_var, functional_net.bn.running_var)


def test_report_accounts_for_every_parameter_and_counts_match(functional_net):
    v3t = convert(functional_net, "3t", check=False)
    v3d = convert(functional_net, "3d", check=False)
    report = v3t.conversion_report
    keys_2d = list(functional_net.state_dict())
    assert sorted(p.key for p in report.parameters) == sorted(keys_2d)
    assert sorted(report.new_parameters) == sorted(
        f"{layer}.{name}" for layer in ("stem", "branch") for name in Conv3T.temporal_parameter_names
    )
    assert report.parameters_2d == count_parameters(functional_net)
    assert report.parameters_3t == count_parameters(v3t)
    assert report.parameters_3d == count_parameters(v3d) == v3d.conversion_report.parameters_3d
    # hand count: stem 8*3*3*3 + 8 bias; branch 8*8*3*5; 3T adds 4 * out * (D - 1) per k x k conv
    assert report.parameters_3t - report.parameters_2d == 4 * 8 * 2 * 2
    assert report.parameters_3d - report.parameters_2d == 2 * (8 * 3 * 9 + 8 * 8 * 15)
    text = str(report)
    assert "Conv2d -> Conv3T" in text and "3T" in text and "all transferred" in text
    assert "branch.weight: 2d filter (8, 8, 3, 5) -> (8, 8, 3, 5)" in report.details()


def test_time_kernel_one_is_the_2d_network_frame_by_frame():
    """With temporal depth 1 nothing mixes frames: a ResNet's logits on any clip are the mean of its 2D logits
    over frames (global average pooling, then a linear layer). An independent check of where time goes."""
    torch.manual_seed(1)
    model = calibrate(torchvision.models.resnet18(num_classes=7))
    video = convert(model, "3d", time_kernel=1, check=False, image_size=32).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        frames = torch.stack([model(clip[:, :, t]) for t in range(4)]).mean(0)
        torch.testing.assert_close(video(clip), frames, rtol=1e-4, atol=1e-5)


def test_replicate_padding_pads_only_time(functional_net):
    video = convert(functional_net, "3t", **EXACT)
    assert isinstance(video.stem, TimePaddedConv3T)
    assert video.stem.padding == (0, 1, 1) and video.stem.time_padding == 1
    assert video.stem.padding_mode == "zeros" and video.stem.time_padding_mode == "replicate"


def test_fold_keeps_the_time_padding_of_a_converted_model(functional_net):
    """fold() of a converted model with replicate time padding: the folded model keeps the clip's length and
    gives the same logits (a plain Conv3d would drop the padding and shorten time by two frames per layer)."""
    from conv3t import fold
    from conv3t.nn import randomize_temporal_parameters
    from conv3t.nn.time_padded import TimePaddedConv3d

    video = convert(functional_net, "3t", **EXACT).eval()
    torch.manual_seed(3)
    randomize_temporal_parameters(video, 0.3, scale_bound=0.1)  # a kernel that is not the 2D filter repeated
    folded = fold(video)
    assert isinstance(folded.stem, TimePaddedConv3d) and not isinstance(folded.stem, Conv3T)
    assert (folded.stem.time_padding, folded.stem.time_padding_mode) == (1, "replicate")
    clip = torch.randn(2, 3, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded(clip), video(clip), rtol=1e-4, atol=1e-5)


def test_check_runs_through_a_twin_for_other_settings(functional_net):
    video = convert(functional_net, "3t", inflate="repeat", temporal_padding="zeros", image_size=32)
    assert "through a twin" in video.conversion_report.verified


def test_a_broken_transfer_fails_the_check(functional_net, monkeypatch):
    """The check catches conversion bugs: here every 2D filter is transferred 1% too large."""
    from conv3t.models.conversion import layers

    original = layers._transfer

    def broken(src, dst, path, settings):
        fates = original(src, dst, path, settings)
        if isinstance(dst, Conv3T | nn.Conv3d):
            with torch.no_grad():
                dst.weight.mul_(1.01)
        return fates

    monkeypatch.setattr(layers, "_transfer", broken)
    with pytest.raises(EquivalenceError, match="FAILED"):
        convert(functional_net, "3d", **EXACT)


def test_verify_refuses_settings_where_the_property_does_not_hold(functional_net):
    video = convert(functional_net, "3t", check=False)
    with pytest.raises(ValueError, match="inflate='mean' and temporal_padding='replicate'"):
        verify_conversion(functional_net, video)
    exact = convert(functional_net, "3t", **EXACT)
    with torch.no_grad():
        exact.stem.rotation.fill_(0.1)
    with pytest.raises(ValueError, match="stem has moved"):
        verify_conversion(functional_net, exact)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "2d"}, "kind must be one of"),
        ({"inflate": "copy"}, "inflate must be one of"),
        ({"temporal_padding": "reflect"}, "temporal_padding must be one of"),
        ({"time_kernel": 4}, "time_kernel must be an odd positive int"),
    ],
)
def test_bad_settings_are_named(functional_net, kwargs, message):
    with pytest.raises(ValueError, match=message):
        convert(functional_net, **kwargs)


class _ShuffleNet(nn.Module):
    """ShuffleNet's channel shuffle and split, ConvNeXt's layer scale and channels-last LayerNorm, in small."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.mix = nn.Conv2d(4, 4, 3, padding=1, groups=2)
        self.scale = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        n, c, h, w = x.size()
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)
        a, b = x.chunk(2, dim=1)
        x = torch.cat((a, self.mix(b)), dim=1) * self.scale
        x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.parametrize("kind", ["3t", "3d"])
def test_channel_shuffle_layer_scale_and_channels_last_norm(kind):
    torch.manual_seed(3)
    model = _ShuffleNet().eval()
    video = convert(model, kind, **EXACT)
    assert video.conversion_report.verified.startswith("passed")
    into = [o.into for o in video.conversion_report.ops]
    assert any(i.startswith("regroups channels (8,) -> (2, 4)") for i in into)
    assert "permute(0, 2, 3, 1) -> permute(0, 2, 3, 4, 1)" in into
    assert "permute(0, 3, 1, 2) -> permute(0, 4, 1, 2, 3)" in into
    assert any("scale" in i and "unsqueeze(-3)" in i for i in into)
    # time stays where it was: a clip whose frames differ gives, frame by frame, what a video model with
    # temporal depth 1 gives (no layer mixes frames), i.e. the mean of the 2D logits
    per_frame = convert(model, "3d", time_kernel=1, check=False, image_size=32).eval()
    clip = torch.randn(2, 3, 3, 16, 16)
    with torch.no_grad():
        expected = torch.stack([model(clip[:, :, t]) for t in range(3)]).mean(0)
        torch.testing.assert_close(per_frame(clip), expected, rtol=1e-4, atol=1e-5)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.roll(self.conv(x), 1, dims=3)


class _Rolling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(_Block())
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean((2, 3)))


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if x.sum() > 0:  # control flow on a tensor value: not traceable
            x = F.max_pool2d(x, 2)
        return x.mean((2, 3))


def test_an_unsupported_operation_is_named_with_its_module_path():
    with pytest.raises(ConversionError, match=r"torch\.roll in features\.0 .*no video form"):
        convert(_Rolling(), check=False)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), ConversionError, "not a classifier"),
        (nn.Sequential(nn.Conv3d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2)), ConversionError, r"0 \(Conv3d\)"),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(2), nn.Conv1d(4, 2, 1)), ConversionError, "1D or 3D"),
        (nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2)), ConversionError, "no Conv2d"),
        (_Branchy(), ConversionError, "cannot be traced with torch.fx"),
        ("resnet18", TypeError, "torch.nn.Module"),
    ],
)
def test_bad_models_get_errors_that_say_what_is_wrong(model, error, message):
    with pytest.raises(error, match=message):
        convert(model, check=False, image_size=32)
