"""Slice 0 of a cumulative kernel is the 2D filter itself, bit for bit (issue 20; since issue 28 it is the product
with ``C_0 = I``, which is exact, rather than a copy joined by ``cat``), and the identity rows get no gradient.

Expectation: the product with the identity rows written out (``identity_first=False``, the form the kernel
tests compare with the numpy reference) gives the same kernel and the same gradients of the filter and of the
step matrices; float64 gradcheck and gradgradcheck of the whole generation.
"""

from __future__ import annotations

import pytest
import torch

from conv3t.nn import fused


def _inputs(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 3, 2, 2, dtype=dtype, generator=gen, requires_grad=True)  # small: gradcheck is slow
    mats = torch.rand(2, 2, 4, 4, dtype=dtype, generator=gen).div(2).requires_grad_()  # D = 3, P = 4
    return weight, mats


def _kernel(weight, mats, start, stop, channels_last, identity_first):
    stacked = fused.cumulative_stack(mats)
    return fused.kernel_product(weight, stacked, start, stop, channels_last, identity_first=identity_first)


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("start, stop", [(0, 3), (0, 2), (0, 1), (1, 3), (1, 2)])
def test_same_kernel_and_gradients_as_the_written_out_product(start, stop, channels_last):
    weight, mats = _inputs()
    outs, grads = [], []
    for identity_first in (False, True):
        kernel = _kernel(weight, mats, start, stop, channels_last, identity_first)
        probe = torch.linspace(-1, 1, kernel.numel(), dtype=kernel.dtype).view_as(kernel)
        outs.append(kernel.detach())
        grads.append(torch.autograd.grad((kernel * probe).sum(), (weight, mats)))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    if start == 0:
        torch.testing.assert_close(outs[1][:, :, 0], weight.detach(), rtol=0, atol=0)  # a copy, exactly
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(channels_last):
    weight, mats = _inputs()

    def fn(w, m):
        return _kernel(w, m, 0, 3, channels_last, identity_first=True)

    assert torch.autograd.gradcheck(fn, (weight, mats))
    assert torch.autograd.gradgradcheck(fn, (weight, mats))
