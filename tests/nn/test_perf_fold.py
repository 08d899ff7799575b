"""``conv3t.fold``: every Conv3T becomes the nn.Conv3d it computes; same outputs; ONNX export of the result."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import conv3t
from conv3t import Conv3T
from conv3t.fold import fold_layer

from .test_perf_cache import randomized


class Block(nn.Module):
    def __init__(self, shared: Conv3T) -> None:
        super().__init__()
        self.conv = randomized(Conv3T(4, 4, 3, padding=1, bias=False), seed=3)
        self.shared = shared
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)) + self.shared(x))


def make_net() -> nn.Module:
    torch.manual_seed(0)
    shared = randomized(Conv3T(4, 4, (3, 3, 3), padding=1, padding_mode="replicate"), seed=2)
    net = nn.Sequential(
        randomized(Conv3T(3, 4, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3)), seed=1),
        Block(shared),
        Block(shared),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, 5),
    )
    with torch.no_grad():  # non-trivial running statistics
        net.train()(torch.randn(2, 3, 6, 16, 16))
    return net.eval()


def test_fold_replaces_every_conv3t_and_keeps_outputs():
    net = make_net()
    folded = conv3t.fold(net)
    assert not any(isinstance(m, Conv3T) for m in folded.modules())
    assert sum(isinstance(m, Conv3T) for m in net.modules()) == 4  # the original is untouched
    assert isinstance(folded[0], nn.Conv3d) and folded[0].weight.shape == (4, 3, 5, 7, 7)
    assert folded[1].shared is folded[2].shared  # sharing survives
    assert folded[1].shared.padding_mode == "replicate"
    assert not folded.training
    x = torch.randn(2, 3, 6, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)
    folded_params = sum(p.numel() for p in folded.parameters())
    assert folded_params > sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, stride=2, padding=1, groups=2),
        dict(kernel_size=(4, 3, 5), padding="same", dilation=(1, 2, 1), bias=False),
        dict(kernel_size=3, padding="valid", padding_mode="circular"),
        dict(kernel_size=(3, 3, 3), padding=1, padding_mode="reflect"),
    ],
)
def test_fold_layer_matches_for_conv3d_arguments(kwargs):
    layer = randomized(Conv3T(4, 6, **kwargs).double(), seed=5)
    conv = fold_layer(layer)
    assert conv.weight.dtype == torch.float64 and conv.weight.shape == layer.kernel().shape
    x = torch.randn(2, 4, 7, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(conv(x), layer(x))
    assert isinstance(conv3t.fold(layer), nn.Conv3d)


def test_fold_layer_rejects_other_modules():
    with pytest.raises(TypeError, match="Conv3T"):
        fold_layer(nn.Conv3d(2, 2, 3))


def test_folded_model_exports_to_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    net = make_net()
    folded = conv3t.fold(net)
    x = torch.randn(1, 3, 6, 16, 16)
    path = tmp_path / "folded.onnx"
    torch.onnx.export(folded, (x,), str(path), input_names=["clip"], output_names=["logits"])
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert any(node.op_type == "Conv" for node in model.graph.node)
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"clip": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), net(x), atol=1e-4, rtol=1e-4)
