"""Straight after a 2D -> video transfer the eval-mode network must compute what the 2D network computes.

On a static clip (one frame repeated) a video network with ``inflate="mean"`` must reproduce, at every frame
whose temporal receptive field lies inside the clip, the output of every residual block of the 2D torchvision
ResNet18 it came from (BatchNorm statistics included). ``"repeat"`` (the paper's convention) does not.
The 2D weights are random, ImageNet-shaped, saved to a file and loaded through ``create_model(pretrained=)``:
nothing downloads.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from conv3t.models import create_model, imagenet_checkpoint_path

# Temporal receptive field (half-width R in input frames) and total temporal stride S of every block output
# of a ResNet18 with stem_temporal_stride=1, worked out by hand: conv1 7 taps (R 3), max-pool 3 (R 4); every
# 3-tap convolution adds its stride so far, and layers 2-4 halve the time axis in their first convolution.
BLOCKS = {
    "layer1.0": (6, 1),
    "layer1.1": (8, 1),
    "layer2.0": (11, 2),
    "layer2.1": (15, 2),
    "layer3.0": (21, 4),
    "layer3.1": (29, 4),
    "layer4.0": (41, 8),
    "layer4.1": (57, 8),
}
FRAMES = 128  # layer4.1 keeps 16 steps, of which those centred in [57, 70] see no temporal padding


def _random_bn(model: nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters: a transfer that ignores them fails."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory) -> tuple[nn.Module, str]:
    torch.manual_seed(3)
    model = torchvision.models.resnet18()
    _random_bn(model, 3)
    path = tmp_path_factory.mktemp("weights") / "resnet18_random.pth"
    torch.save(model.state_dict(), path)
    return model.eval(), str(path)


def _block_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    outputs: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach()))
        for name in BLOCKS
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outputs


def _interior(length: int, half_width: int, stride: int) -> list[int]:
    return [t for t in range(length) if t * stride - half_width >= 0 and t * stride + half_width <= FRAMES - 1]


@pytest.fixture(scope="module")
def static_clip() -> tuple[torch.Tensor, torch.Tensor]:
    frame = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return frame, frame.unsqueeze(2).expand(1, 3, FRAMES, 32, 32).contiguous()


@pytest.mark.parametrize("name", ["resnet18_3t", "resnet18_3d"])
def test_mean_inflation_reproduces_every_2d_block_at_interior_frames(name, resnet18_file, static_clip):
    model_2d, path = resnet18_file
    frame, clip = static_clip
    video = create_model(name, 1000, pretrained=path, inflate="mean", stem_temporal_stride=1).eval()
    expected = _block_outputs(model_2d, frame)
    got = _block_outputs(video, clip)
    for block, (half_width, stride) in BLOCKS.items():
        frames = _interior(got[block].shape[2], half_width, stride)
        assert frames, block  # the clip is long enough for every block to have interior frames
        ref = expected[block]
        scale = float(ref.abs().max())
        for t in frames:
            torch.testing.assert_close(got[block][:, :, t], ref, rtol=1e-3, atol=1e-4 * scale, msg=f"{block} t={t}")
    # Frames next to the clip's ends see zero padding in time and differ: the interior bound is not vacuous.
    assert not torch.allclose(got["layer1.0"][:, :, 0], expected["layer1.0"], rtol=1e-3, atol=1e-3)


def test_repeat_inflation_does_not(resnet18_file, static_clip):
    # The paper's convention: every slice holds the unchanged 2D filter, so conv1 gives 7x the 2D response and
    # the 2D BatchNorm statistics no longer fit; already the first block is far off.
    model_2d, path = resnet18_file
    frame, clip = static_clip
    video = create_model("resnet18_3t", 1000, pretrained=path, inflate="repeat", stem_temporal_stride=1).eval()
    ref = _block_outputs(model_2d, frame)["layer1.0"]
    got = _block_outputs(video, clip[:, :, :16])["layer1.0"][:, :, 8]
    assert (got - ref).abs().max() > 0.5 * ref.abs().max()


# ---------------------------------------------------------------------------------------------- GoogLeNet
@pytest.fixture
def imagenet_googlenet(tmp_path, monkeypatch) -> nn.Module:
    """Random weights in torchvision's GoogLeNet layout at the ImageNet cache path of a private TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(5)
    model = torchvision.models.GoogLeNet(aux_logits=True, init_weights=True, transform_input=False)
    path = imagenet_checkpoint_path("googlenet")
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    # torchvision builds its ImageNet GoogLeNet with transform_input=True: that is what the weights expect.
    reference = torchvision.models.GoogLeNet(aux_logits=True, init_weights=False, transform_input=True)
    reference.load_state_dict(model.state_dict())
    return reference.eval()


@pytest.mark.parametrize("name", ["googlenet_3t", "googlenet_3d"])
def test_imagenet_googlenet_transforms_its_input_like_the_weights_expect(name, imagenet_googlenet):
    video = create_model(name, 1000, pretrained="imagenet", inflate="mean").eval()
    assert video.transform_input is True
    frame = torch.randn(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    clip = frame.unsqueeze(2).expand(1, 3, 12, 40, 40)
    with torch.no_grad():
        # torchvision applies the transform in forward(); the stem alone shows whether ours matches.
        expected = imagenet_googlenet.conv1(imagenet_googlenet._transform_input(frame))
        got = video.conv1(video._transform_input(clip))[:, :, 3]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_imagenet_googlenet_refuses_a_mismatched_input_transform(imagenet_googlenet):
    with pytest.raises(ValueError, match="needs transform_input=True"):
        create_model("googlenet_3t", 27, pretrained="imagenet", transform_input=False)
    # Scratch and 2D-file models keep the plain default.
    assert create_model("googlenet_3t", 27).transform_input is False


@pytest.mark.parametrize(("mode", "divisor"), [("repeat", 1.0), ("mean", 7.0)])
def test_the_trainer_config_chooses_the_inflation(mode, divisor, resnet18_file):
    from conv3t.train.config import validate_config
    from conv3t.train.module import build_model

    model_2d, path = resnet18_file
    cfg = validate_config(
        {"model": {"name": "resnet18_3t", "pretrained": path, "inflate": mode}, "data": {"dataset": "synthetic"}}
    )
    model = build_model(cfg.model, 1000)
    torch.testing.assert_close(model.conv1.weight, model_2d.conv1.weight / divisor, rtol=0, atol=0)
