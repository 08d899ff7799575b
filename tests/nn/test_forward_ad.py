"""Forward-mode AD and functorch transforms through kernel generation.

The fast path's autograd Functions define only ``backward``; forward-mode AD (``jvp``, ``jacfwd``,
``torch.autograd.functional.jacobian(strategy="forward-mode")``, used by the identifiability analysis) must
take the composed operations and give the same derivatives as reverse mode.
"""

import torch

from conv3t.nn.functional import generate_kernel


def _inputs(depth: int = 3, k: int = 5):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 3, k, k, generator=g, dtype=torch.float64)
    steps = depth - 1
    scale = 1 + 0.1 * torch.randn(2, steps, generator=g, dtype=torch.float64)
    rot, tx, ty = (0.2 * torch.randn(2, steps, generator=g, dtype=torch.float64) for _ in range(3))
    return weight, scale, rot, tx, ty


def test_jvp_equals_reverse_mode_jacobian():
    weight, scale, rot, tx, ty = _inputs()

    def kernel_of(rotation):
        return generate_kernel(weight, scale, rotation, tx, ty).reshape(-1)

    forward = torch.func.jacfwd(kernel_of)(rot)
    reverse = torch.autograd.functional.jacobian(kernel_of, rot)
    assert forward.shape == (weight.numel() * 3, *rot.shape)
    assert reverse.abs().max() > 0
    torch.testing.assert_close(forward, reverse, rtol=1e-10, atol=1e-12)


def test_forward_mode_jacobian_strategy_matches_grid_sample_reference():
    weight, scale, rot, tx, ty = _inputs(depth=4, k=7)

    def kernel_of(method):
        return lambda s: generate_kernel(weight, s, rot, tx, ty, method=method).reshape(-1)

    fast = torch.autograd.functional.jacobian(kernel_of("matrix"), scale, vectorize=True, strategy="forward-mode")
    reference = torch.autograd.functional.jacobian(kernel_of("grid_sample"), scale)
    torch.testing.assert_close(fast, reference, rtol=1e-8, atol=1e-10)
