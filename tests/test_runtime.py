"""The shared helpers of :mod:`conv3t.runtime`: the weight hash, the model's device (memory sizes and device
names are tested with the streaming code that uses them, tests/verify/test_streaming.py)."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from conv3t.runtime import hash_weights, model_device


def _digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    hash_weights(model, digest)
    return digest.hexdigest()


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_hash_is_the_sha256_of_names_dtypes_shapes_and_bytes_in_name_order() -> None:
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0]]))
        lin.bias.fill_(0.5)
    expected = hashlib.sha256()
    # by hand: "bias" sorts before "weight"; float32 little-endian bytes of each tensor
    expected.update(b"bias|torch.float32|(1,)|" + torch.tensor([0.5]).numpy().tobytes())
    expected.update(b"weight|torch.float32|(1, 2)|" + torch.tensor([1.0, -2.0]).numpy().tobytes())
    assert _digest(lin) == expected.hexdigest()


def test_hash_sees_one_changed_number_and_the_dtype_but_not_a_copy() -> None:
    a, b = _net(), _net()
    assert _digest(a) == _digest(b)
    with torch.no_grad():
        b[0].weight[0, 0, 0, 0] += 1e-6
    assert _digest(a) != _digest(b)
    assert _digest(a) != _digest(_net().double())


def test_model_device_is_the_first_tensors_or_the_cpu() -> None:
    assert model_device(nn.ReLU()) == torch.device("cpu")  # no parameters, no buffers
    meta = nn.Linear(2, 2, device="meta")
    assert model_device(meta) == torch.device("meta")
    buffers_only = nn.BatchNorm1d(2, affine=False).to("meta")
    assert model_device(buffers_only) == torch.device("meta")
