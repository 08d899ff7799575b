"""2D -> 3T / 3D weight transfer, from random torchvision models (no download) and from files."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from conv3t import Conv3T
from conv3t.models import TransferReport, create_model, imagenet_checkpoint_path, transfer_2d_weights


def _randomise_batchnorm(model: nn.Module, seed: int) -> None:
    """Non-trivial BN statistics and affine parameters, so copying them is visible."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t in (m.weight, m.bias, m.running_mean):
                    t.copy_(torch.randn(t.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def resnet18_2d() -> nn.Module:
    torch.manual_seed(1)
    model = torchvision.models.resnet18()
    _randomise_batchnorm(model, 1)
    return model.eval()


@pytest.fixture(scope="module")
def googlenet_2d() -> nn.Module:
    torch.manual_seed(2)
    model = torchvision.models.GoogLeNet(aux_logits=True, init_weights=True)
    _randomise_batchnorm(model, 2)
    return model.eval()


@pytest.fixture(scope="module")
def video_resnets() -> dict[str, nn.Module]:
    # Built once; every transfer below overwrites all of their tensors, so tests may share them.
    return {name: create_model(name, 1000) for name in ("resnet18_3t", "resnet18_3d")}


def _static_clip(frames: int = 12, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    frame = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return frame, frame.unsqueeze(2).expand(1, 3, frames, size, size).contiguous()


@pytest.mark.parametrize(
    ("name", "inflate", "factor"),
    [
        ("resnet18_3t", "repeat", 7.0),
        ("resnet18_3t", "mean", 1.0),  # K_1 = 2D filter / 7: seven identical slices sum to the 2D filter
        ("resnet18_3d", "repeat", 7.0),
        ("resnet18_3d", "mean", 1.0),
    ],
)
def test_first_layer_on_a_static_clip_equals_the_2d_conv1(name, inflate, factor, resnet18_2d, video_resnets):
    model = video_resnets[name]
    report = transfer_2d_weights(model, resnet18_2d.state_dict(), inflate=inflate)
    frame, clip = _static_clip()
    with torch.no_grad():
        expected = resnet18_2d.conv1(frame)  # (1, 64, 16, 16)
        out = model.conv1(clip)  # (1, 64, 6, 16, 16): t uses frames 2t-3 .. 2t+3
    assert out.shape == (1, 64, 6, 16, 16)
    for t in (2, 3, 4):  # interior: no temporal zero padding involved
        torch.testing.assert_close(out[:, :, t], factor * expected, rtol=1e-4, atol=1e-4)
    # At the first step three of the seven slices fall on temporal padding.
    torch.testing.assert_close(out[:, :, 0], 4 / 7 * factor * expected, rtol=1e-4, atol=1e-4)
    assert isinstance(report, TransferReport) and report.inflate == inflate


def test_googlenet_3d_mean_inflation_keeps_the_2d_stem_response(googlenet_2d):
    model = create_model("googlenet_3d", 10)
    transfer_2d_weights(model, googlenet_2d.state_dict(), inflate="mean")
    frame, clip = _static_clip(frames=12, size=40)
    model.eval()
    with torch.no_grad():
        expected = googlenet_2d.conv1(frame)  # conv + BN + ReLU
        out = model.conv1(clip)
    torch.testing.assert_close(out[:, :, 3], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("name", "inflate"),
    [("resnet18_3t", "repeat"), ("resnet18_3t", "mean"), ("resnet18_3d", "repeat"), ("resnet18_3d", "mean")],
)
def test_every_tensor_lands_where_it_should(name, inflate, resnet18_2d, video_resnets):
    state = resnet18_2d.state_dict()
    model = video_resnets[name]
    with torch.no_grad():  # as if trained: the transfer must put the temporal parameters back to identity
        for m in model.modules():
            if isinstance(m, Conv3T):
                m.scale.add_(0.1)
                m.rotation.add_(0.2)
    report = transfer_2d_weights(model, state, inflate=inflate, source="random resnet18")
    modules = dict(model.named_modules())
    for key, value in model.state_dict().items():
        module_name, local = key.rsplit(".", 1)
        module = modules[module_name]
        if isinstance(module, Conv3T) and local != "weight":
            expected = torch.ones_like(value) if local == "scale" else torch.zeros_like(value)
            assert torch.equal(value, expected), key
            assert key in report.identity
        elif isinstance(module, nn.Conv3d):
            depth = module.kernel_size[0]
            divisor = depth if (inflate == "mean" and depth > 1) else 1
            expected = state[key].unsqueeze(2).expand_as(value) / divisor
            torch.testing.assert_close(value, expected, rtol=0, atol=0)
            assert key in (report.inflated if depth > 1 else report.copied)
        elif isinstance(module, Conv3T) and inflate == "mean":
            torch.testing.assert_close(value, state[key] / module.temporal_depth, rtol=0, atol=0)
            assert key in report.inflated
        else:  # Conv3T weight, BatchNorm, fc (1000 classes match)
            assert torch.equal(value, state[key]), key
            assert key in report.copied
    assert not report.initialised and not report.skipped
    assert "random resnet18" in str(report) and "0 freshly initialised" in str(report)


def test_classifier_of_another_class_count_keeps_its_fresh_init(resnet18_2d):
    model = create_model("resnet18_3t", 27)
    fresh = model.fc.weight.detach().clone()
    report = transfer_2d_weights(model, resnet18_2d.state_dict())
    assert torch.equal(model.fc.weight, fresh)
    assert set(report.initialised) == {"fc.weight", "fc.bias"}
    assert "fc.weight" in str(report) and "(1000, 512)" in str(report)


@pytest.mark.parametrize("num_classes", [101, 1000])
def test_googlenet_aux_fc1_is_always_fresh_fc2_copied_when_classes_match(num_classes, googlenet_2d):
    model = create_model("googlenet_3t", num_classes)
    state = googlenet_2d.state_dict()
    report = transfer_2d_weights(model, state)
    fresh = {"aux1.fc1.weight", "aux1.fc1.bias", "aux2.fc1.weight", "aux2.fc1.bias"}
    heads = {"fc.weight", "fc.bias", "aux1.fc2.weight", "aux1.fc2.bias", "aux2.fc2.weight", "aux2.fc2.bias"}
    if num_classes == 1000:
        assert set(report.initialised) == fresh
        assert heads <= set(report.copied)
        assert torch.equal(model.aux2.fc2.weight, state["aux2.fc2.weight"])
    else:
        assert set(report.initialised) == fresh | heads
    assert torch.equal(model.aux1.conv.conv.weight[:, :, 0], state["aux1.conv.conv.weight"])
    assert torch.equal(model.inception4e.branch2[1].conv.weight, state["inception4e.branch2.1.conv.weight"])
    assert "(1024, 2048)" in str(report)


def test_googlenet_without_aux_heads_reports_the_2d_heads_as_skipped(googlenet_2d):
    model = create_model("googlenet_3d", 1000, aux_logits=False)
    report = transfer_2d_weights(model, googlenet_2d.state_dict())
    assert report.skipped and all(k.startswith(("aux1.", "aux2.")) for k in report.skipped)
    assert len(report.skipped) == 20 and not report.initialised
    assert "aux1.* (10 keys)" in str(report)


def test_resnet10_takes_the_first_block_of_each_resnet18_stage(resnet18_2d):
    model = create_model("resnet10_3d", 1000)
    report = transfer_2d_weights(model, resnet18_2d.state_dict())
    assert torch.equal(model.layer3[0].bn2.running_var, resnet18_2d.layer3[0].bn2.running_var)
    assert {k.split(".")[1] for k in report.skipped} == {"1"}
    assert "layer4.1.* (12 keys)" in str(report)


def test_shape_mismatch_names_the_key(resnet18_2d):
    model = create_model("resnet10_3t", 9, base_width=16)
    with pytest.raises(ValueError, match=r"'conv1.weight'.*\(64, 3, 7, 7\).*\(16, 3, 7, 7\)"):
        transfer_2d_weights(model, resnet18_2d.state_dict())


def test_state_dict_of_another_architecture_is_rejected(resnet18_2d):
    with torch.device("meta"):
        model = create_model("googlenet_3t", 10)
    with pytest.raises(ValueError, match=r"lacks \d+ weights the video model needs"):
        transfer_2d_weights(model, {k: v.to("meta") for k, v in resnet18_2d.state_dict().items()})


def test_bad_inflate_mode(resnet18_2d):
    with pytest.raises(ValueError, match="inflate"):
        transfer_2d_weights(create_model("resnet10_3d", 2, base_width=8), resnet18_2d.state_dict(), inflate="sum")
    with pytest.raises(ValueError, match="inflate"):
        create_model("resnet10_3d", 2, inflate="sum")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_path(suffix, tmp_path, resnet18_2d):
    path = tmp_path / f"resnet18{suffix}"
    state = resnet18_2d.state_dict()
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    model = create_model("resnet18_3d", 27, pretrained=path, inflate="mean")
    torch.testing.assert_close(model.conv1.weight[:, :, 3], state["conv1.weight"] / 7)
    assert model.transfer_report.source == str(path)
    assert set(model.transfer_report.initialised) == {"fc.weight", "fc.bias"}


def test_pretrained_path_accepts_a_wrapped_checkpoint_and_rejects_non_state_dicts(tmp_path, resnet18_2d):
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": resnet18_2d.state_dict(), "epoch": 3}, wrapped)
    model = create_model("resnet10_3t", 1000, pretrained=str(wrapped))
    assert torch.equal(model.conv1.weight, resnet18_2d.conv1.weight)
    junk = tmp_path / "junk.pt"
    torch.save([1, 2, 3], junk)
    with pytest.raises(ValueError, match=r"junk\.pt does not contain a state dict"):
        create_model("resnet10_3t", 10, pretrained=junk)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.pth"):
        create_model("resnet10_3t", 10, pretrained=garbage)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth does not exist"):
        create_model("resnet10_3t", 10, pretrained=tmp_path / "missing.pth")


def test_imagenet_offline_without_cache_names_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert imagenet_checkpoint_path("resnet18") == expected
    with pytest.raises(FileNotFoundError) as info:
        create_model("resnet18_3t", 27, pretrained="imagenet")
    message = str(info.value)
    assert str(expected) in message and "pretrained=PATH" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    expected_g = tmp_path / "hub" / "checkpoints" / "googlenet-1378be20.pth"
    with pytest.raises(FileNotFoundError, match=re.escape(str(expected_g))):
        create_model("googlenet_3d", 27, pretrained="imagenet")


def test_imagenet_from_the_hub_cache(tmp_path, monkeypatch, resnet18_2d):
    # A (random) torchvision state dict placed where torchvision's weights API looks for the ImageNet file.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = imagenet_checkpoint_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(resnet18_2d.state_dict(), path)
    model = create_model("resnet18_3t", 27, pretrained="imagenet")
    assert model.transfer_report.source == "imagenet:resnet18"
    assert torch.equal(model.layer4[1].conv2.weight, resnet18_2d.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match="base_width=64"):
        create_model("resnet10_3t", 27, pretrained="imagenet", base_width=16)
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(RuntimeError, match="not a valid torchvision resnet18 state dict"):
        create_model("resnet18_3t", 27, pretrained="imagenet")
