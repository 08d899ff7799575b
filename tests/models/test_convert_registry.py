"""Converted torchvision families through the registry: names, weights from a file, the offline error."""

from __future__ import annotations

import pytest
import torch
import torchvision

from conv3t import Conv3T
from conv3t.models import count_parameters, create_model, list_models
from conv3t.models.zoo import converted_imagenet_state_dict


def test_converted_families_are_listed_after_the_paper_models():
    names = list_models()
    assert names[:4] == ["resnet18_3t", "resnet18_3d", "googlenet_3t", "googlenet_3d"]
    assert {"resnet50_3t", "mobilenet_v3_small_3t", "efficientnet_b0_3d", "convnext_tiny_3t"} <= set(names)


def test_create_model_builds_a_converted_family_at_identity():
    model = create_model("squeezenet1_1_3t", 6)
    assert model.transfer_report is None
    out = model(torch.randn(2, 3, 4, 48, 48))
    assert out.shape == (2, 6)
    convs = [m for m in model.modules() if isinstance(m, Conv3T)]
    assert convs and all(bool((m.scale == 1).all()) and not m.rotation.any() for m in convs)
    assert count_parameters(model) == model.conversion_report.parameters_3t


def test_local_2d_state_dict_is_loaded_and_the_head_reinitialised(tmp_path):
    torch.manual_seed(0)
    model_2d = torchvision.models.squeezenet1_1(num_classes=1000)
    path = tmp_path / "squeezenet.pth"
    torch.save(model_2d.state_dict(), path)
    video = create_model("squeezenet1_1_3d", 5, pretrained=path, inflate="mean")
    report = video.transfer_report
    assert set(report.initialised) == {"classifier.1.weight", "classifier.1.bias"}  # 1000 -> 5 classes
    assert "features.0.weight" in report.inflated and "features.3.squeeze.weight" in report.copied
    torch.testing.assert_close(video.features[0].weight[:, :, 1], model_2d.features[0].weight / 3)
    assert video.classifier[1].weight.shape == (5, 512, 1, 1, 1)


def test_a_state_dict_of_another_architecture_is_refused_by_name(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit torchvision.s SqueezeNet: 172 keys .*features\.0\.weight"):
        create_model("squeezenet1_1_3t", 5, pretrained=path)


def test_imagenet_offline_without_the_cached_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("CONV3T_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"mobilenet_v3_small ImageNet weights.*CONV3T_OFFLINE.*https://"):
        create_model("mobilenet_v3_small_3t", 5, pretrained="imagenet")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        converted_imagenet_state_dict("resnet50")


def test_architecture_keywords_reach_the_converter():
    model = create_model("squeezenet1_1_3t", 3, time_kernel=5, temporal_padding="replicate")
    assert model.features[0].kernel_size == (5, 3, 3)
    assert model.conversion_report.temporal_padding == "replicate"
    with pytest.raises(TypeError, match="time_kernel"):
        create_model("squeezenet1_1_3t", 3, base_width=8)


def test_any_torchvision_model_converts_by_name():
    model = create_model("torchvision:squeezenet1_0_3d", 4)
    assert model.conversion_report.source == "SqueezeNet" and model.conversion_report.kind == "3d"
    assert "torchvision:squeezenet1_0_3d" not in list_models()  # resolved on demand, not listed
    with pytest.raises(ValueError, match="torchvision has no classification model 'resnet99'"):
        create_model("torchvision:resnet99_3t", 4)


@pytest.mark.slow
def test_any_timm_model_converts_by_name():
    pytest.importorskip("timm")
    video = create_model("timm:resnet10t_3t", 4)
    assert video(torch.randn(1, 3, 2, 32, 32)).shape == (1, 4)
    with pytest.raises(ValueError, match="pretrained='imagenet' is for torchvision models"):
        create_model("timm:resnet10t_3t", 4, pretrained="imagenet")
