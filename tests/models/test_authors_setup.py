"""transfer="conv_only" and init="authors": the authors' way of starting a network (utilities/setup.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from conv3t.models import create_model
from conv3t.nn import Conv3T


@pytest.fixture(scope="module")
def resnet18_2d(tmp_path_factory):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.normal_(0.5, 0.1)  # every BatchNorm entry far from its default (1, 0, 0, 1)
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_conv_only_copies_convolution_kernels_and_nothing_else(resnet18_2d):
    path, state = resnet18_2d
    model = create_model("resnet18_3t", 27, pretrained=path, transfer="conv_only", init="authors")
    torch.testing.assert_close(model.conv1.weight, state["conv1.weight"])  # Conv3T: the 2D filter as is
    torch.testing.assert_close(model.layer2[0].downsample[0].weight[:, :, 0], state["layer2.0.downsample.0.weight"])
    assert torch.equal(model.bn1.weight, torch.ones(64)) and torch.equal(model.bn1.running_mean, torch.zeros(64))
    assert torch.equal(model.layer4[1].bn2.running_var, torch.ones(512))
    report = model.transfer_report
    assert "bn1.running_mean" in report.initialised and "fc.weight" in report.initialised
    assert not any(k.startswith(("bn", "fc")) or ".bn" in k for k in report.copied)
    full = create_model("resnet18_3t", 27, pretrained=path)  # transfer="all" copies BatchNorm too
    torch.testing.assert_close(full.bn1.running_mean, state["bn1.running_mean"])


def test_authors_init_draws_2d_filters_from_a_unit_normal():
    torch.manual_seed(0)
    model = create_model("resnet18_3t", 27, init="authors")
    filters = torch.cat([m.weight.detach().flatten() for m in model.modules() if isinstance(m, Conv3T)])
    assert abs(float(filters.std()) - 1.0) < 0.01 and abs(float(filters.mean())) < 0.01
    for layer in (m for m in model.modules() if isinstance(m, Conv3T)):
        assert torch.equal(layer.scale, torch.ones_like(layer.scale)) and not layer.rotation.any()
    # everything else at PyTorch's own defaults: kaiming_uniform(a=sqrt(5)) -> bound 1 / sqrt(fan_in)
    for weight in (model.fc.weight.detach(), model.layer3[0].downsample[0].weight.detach()):
        bound = 1 / math.sqrt(weight[0].numel())
        assert float(weight.abs().max()) <= bound
        assert abs(float(weight.std()) - bound / math.sqrt(3)) < 0.1 * bound
    default = create_model("resnet18_3t", 27)
    default_filters = [m.weight.detach().flatten() for m in default.modules() if isinstance(m, Conv3T)]
    assert float(torch.cat(default_filters).std()) < 0.2


def test_googlenet_conv_only_leaves_the_auxiliary_convolutions(tmp_path):
    torch.manual_seed(0)
    model_2d = torchvision.models.GoogLeNet(aux_logits=True, init_weights=False, transform_input=False)
    torch.save(model_2d.state_dict(), tmp_path / "g.pth")
    model = create_model("googlenet_3t", 27, pretrained=tmp_path / "g.pth", transfer="conv_only", init="authors")
    report = model.transfer_report
    assert "aux1.conv.conv.weight" in report.initialised and "inception3a.branch1.bn.weight" in report.initialised
    assert "inception3a.branch2.1.conv.weight" in report.copied
    with pytest.raises(ValueError, match="transfer must be one of"):
        create_model("resnet18_3t", 27, transfer="bn_only")
