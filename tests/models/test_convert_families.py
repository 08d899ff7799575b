"""Every family the issue names converts to 3T and 3D and passes the constant-clip equivalence check.

Random weights with BatchNorm statistics of real activations (:func:`calibrate`), small images, the check in
float64 to a relative 1e-4 of the logits' scale. One small family runs in the default tier (the
rules ShuffleNet and ConvNeXt need are covered there by a small model in test_convert.py); the rest are
``slow`` (a few seconds each on one CPU thread: tracing twice, shape propagation, the check).
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from conv3t.models import count_parameters
from conv3t.models.conversion import convert
from tests.models.convert_helpers import calibrate

FAST = ["squeezenet1_1"]
SLOW = [
    "shufflenet_v2_x1_0",
    "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2", "mobilenet_v3_small",
    "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s", "regnet_y_400mf", "densenet121", "vgg11_bn",
    "googlenet", "inception_v3", "mnasnet0_5", "convnext_tiny",
]  # fmt: skip
SIZE = {"inception_v3": 80}  # Inception3 needs at least 75 x 75
EXTRA = {
    "googlenet": {"aux_logits": True, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},  # its auxiliary head needs 139 x 139 or more
}


def _check_family(name: str) -> None:
    torch.manual_seed(0)
    size = SIZE.get(name, 32)
    model = calibrate(getattr(torchvision.models, name)(weights=None, num_classes=10, **EXTRA.get(name, {})), size=size)
    counts = {}
    for kind in ("3t", "3d"):
        video = convert(model, kind, inflate="mean", temporal_padding="replicate", image_size=size)
        report = video.conversion_report
        assert report.verified.startswith("passed"), report.verified
        assert count_parameters(video) == report.parameters_video
        assert not [p.key for p in report.parameters if p.key not in video.state_dict()]
        counts[kind] = report.parameters_3t, report.parameters_3d
    assert counts["3t"] == counts["3d"]  # each conversion reports both counts; they agree


@pytest.mark.parametrize("name", FAST)
def test_small_family_converts_and_passes_the_check(name):
    _check_family(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_family_converts_and_passes_the_check(name):
    _check_family(name)


@pytest.mark.slow
def test_auxiliary_heads_work_in_training_mode():
    """GoogLeNet's forward returns its two auxiliary logits in training mode only: both traced modes work."""
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, num_classes=4, aux_logits=True, init_weights=True)
    video = convert(model, "3t", check=False, image_size=32)
    out = video.train()(torch.randn(2, 3, 3, 32, 32))
    assert [tuple(o.shape) for o in out] == [(2, 4)] * 3
    assert video.eval()(torch.randn(2, 3, 3, 32, 32)).shape == (2, 4)
    assert all(p.used for p in video.conversion_report.parameters)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenetv3_small_050", "efficientnet_b0", "convnext_atto"])
def test_timm_models_convert_and_pass_the_check(name):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = calibrate(timm.create_model(name, pretrained=False, num_classes=10))
    for kind in ("3t", "3d"):
        video = convert(model, kind, inflate="mean", temporal_padding="replicate", image_size=32)
        assert video.conversion_report.verified.startswith("passed")
