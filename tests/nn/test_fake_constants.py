"""Kernel generation under FakeTensorMode leaves the constants cache of real forwards alone (and vice versa).

Each test uses a kernel size no other test builds (and small: larger CPU filters take the four-tap path, which
has no cached constants), so its first generation is the one that fills the cache.
"""

from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import FakeTensorMode, is_fake

from conv3t import Conv3T


def _layer(seed: int, size: tuple[int, int, int]) -> Conv3T:
    torch.manual_seed(seed)
    layer = Conv3T(2, 3, kernel_size=size)
    with torch.no_grad():
        layer.rotation.uniform_(-0.5, 0.5)
        layer.translation_x.uniform_(-0.3, 0.3)
    return layer


def test_fake_generation_does_not_poison_real_forwards() -> None:
    size = (3, 3, 5)
    with FakeTensorMode():
        assert is_fake(_layer(1, size).kernel())
    kernel = _layer(0, size).kernel()  # same size, dtype and device key as the fake generation
    assert not is_fake(kernel)
    assert torch.isfinite(kernel).all()


def test_real_constants_are_not_handed_to_fake_forwards() -> None:
    size = (3, 5, 3)
    assert not is_fake(_layer(0, size).kernel())  # fills the cache for this size on the CPU
    with FakeTensorMode():
        out = _layer(1, size).kernel()
    assert is_fake(out) and out.shape == (3, 2, 3, 5, 3)
