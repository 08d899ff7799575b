"""Functional core of the 3TConv layer: affine parameters -> sampling -> 3D kernel.

A 3TConv kernel of temporal depth ``D`` is built from one 2D filter ``K_1`` and, per output channel and
step ``t = 1 .. D-1``, a scale ``s``, a rotation ``r`` (radians) and a translation ``(t_x, t_y)``
(eq. 3 of the paper). Slice ``K_{t+1}`` is ``K_t`` resampled bilinearly, with zero padding, at the grid

    G(p) = s R(r) (p + t),      p in the kernel's pixel grid in ``affine_grid`` coordinates,

where ``affine_grid`` coordinates with ``align_corners=True`` put the centres of the corner pixels at -1 and +1
(one unit is ``(k - 1) / 2`` kernel pixels) and ``R(r) = [[cos r, -sin r], [sin r, cos r]]`` acts on
``(x, y)`` with x to the right and y down. This is exactly ``F.affine_grid`` + ``F.grid_sample(...,
mode="bilinear", padding_mode="zeros", align_corners=True)`` (eqs. 4-5), the convention of the paper's code.

What this means for the filter's content (pinned by tests): from one slice to the next it moves by ``-t``,
is scaled by ``1 / s`` about the kernel centre and turned by ``-r``, i.e. a positive ``r`` turns the content
counter-clockwise on screen.

Implementations (same values and gradients; ``method`` of :func:`generate_kernel`):

* ``"matrix"`` (default) expresses each bilinear warp of a ``kH x kW`` filter as a dense ``P x P`` sampling
  matrix ``M_t`` (``P = kH*kW``) per output channel and step, built by :mod:`conv3t.nn.fused` in ~25
  tensor operations forward + backward, and then picks by shape (:func:`resolve_method`):

  - ``"cumulative"`` when ``in/groups >= P`` (every 3x3 layer of the networks): cumulative matrices
    ``C_t = M_t ... M_1`` (``C_0 = I``; ``out * D * P^3``) and the whole kernel in ONE batched product
    ``K_1 (out, in/g, P) @ [C_0 | C_1 | ... | C_{D-1}]^T (out, P, D*P)``, written straight into the
    ``(out, in/g, D, kH, kW)`` layout (or the channels_last_3d one); its backward is two batched products;
  - ``"stepwise"`` otherwise, for 3x3 filters over fewer than 9 input channels: one product
    ``K_{t+1} = K_t M_t^T`` per step;
  - ``"sparse"`` for filters of 7x7 and more over fewer than ``P`` input channels (the RGB stems): the
    warps of ``"grid_sample"`` (:mod:`conv3t.nn.grid_sampling`), four taps per kernel element instead of
    ``P``; measured 2.7x faster than the dense stepwise products for the 7x7x7 stem over 3 channels, ~1.2x
    at 24-40 channels, no faster for 5x5 (BENCHMARKS.md, issue 28). CPU tensors only: on other devices
    (unmeasured; ``grid_sample``'s CUDA backward is not deterministic), under ``torch.compile`` and under
    forward-mode AD it runs as ``"stepwise"`` (same values).

  Model-level: :func:`conv3t.nn.batch_kernel_generation` builds the cumulative matrices of all layers of one
  kernel size in one computation (same values).
* ``"grid_sample"`` calls ``F.affine_grid`` / ``F.grid_sample`` and serves as the reference
  (:mod:`conv3t.nn.grid_sampling`; twice differentiable through its dense form). Its CUDA backward is not
  deterministic (it refuses ``torch.use_deterministic_algorithms``).

``"matrix"`` is built from products and elementwise operations only: deterministic and twice
differentiable.

**Derivative at whole pixels.** Bilinear sampling is not differentiable where a sampling position is a
whole pixel (at the identity start every position is; also after exact one-pixel shifts and quarter turns).
Both methods, in float32 and float64, use the symmetric derivative there, the average of the two one-sided
ones (the sample's slope is the central difference of the two neighbouring pixels); see
:mod:`conv3t.nn.sampling` and docs/conventions.md. ``F.grid_sample`` alone takes the one on the right, and
rounding decides which side a computed position falls on, so the methods used to disagree there. At the
identity start the symmetric choice also gives translation and rotation no bias to one side. The sampled
value at such a position is that pixel exactly in every method, so all give the same kernel bit for bit there.
Exception: under forward-mode AD, functorch transforms and ``torch.compile`` ``"grid_sample"`` is
``F.grid_sample`` itself (its one-sided derivative; values off by rounding).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from conv3t.nn import fused
from conv3t.nn.grid_sampling import grid_sample_warp
from conv3t.nn.sampling import (
    affine_theta,
    cumulative_sampling_matrices,
    sampling_grid,
    sampling_matrices,
    sampling_weights,
)

KernelMethod = Literal["matrix", "grid_sample"]
KERNEL_METHODS: tuple[str, ...] = ("matrix", "grid_sample")

__all__ = [
    "KERNEL_METHODS",
    "KernelMethod",
    "affine_theta",
    "cumulative_sampling_matrices",
    "generate_kernel",
    "resolve_method",
    "sampling_grid",
    "sampling_matrices",
    "sampling_weights",
]


def _check_parameters(weight: Tensor, params: tuple[Tensor, ...]) -> None:
    if weight.dim() != 4:
        raise ValueError(f"weight must be (out, in/groups, kH, kW), got shape {tuple(weight.shape)}")
    shape = params[0].shape
    for name, p in zip(("scale", "rotation", "translation_x", "translation_y"), params, strict=True):
        if p.dim() != 2 or p.shape != shape or p.shape[0] != weight.shape[0]:
            raise ValueError(
                f"{name} must have shape (out, D-1) = ({weight.shape[0]}, D-1) like scale, got {tuple(p.shape)}"
            )


#: ``"matrix"`` warps filters of at least this many pixels over few input channels with four taps per element
SPARSE_MIN_PIXELS = 49


def resolve_method(method: KernelMethod, in_per_group: int, height: int, width: int) -> str:
    """The algorithm behind ``method``: ``"cumulative"``, ``"stepwise"``, ``"sparse"`` or ``"grid_sample"``.

    ``"matrix"`` is ``"cumulative"`` when ``in/groups >= kH*kW``: it costs ``out*D*P^3`` for the matrix
    products plus one product of ``out*in*D*P^2``; the stepwise form costs ``out*in*(D-1)*P^2`` in ``D-1``
    dependent products. With many input channels per filter (every 3x3 layer of the networks) the single
    product wins; with few (RGB stems with 7x7 filters) the ``P^3`` products cost more than the warps, and
    from 7x7 on bilinear warps with four taps per element (``"sparse"``, ``out*in*(D-1)*4*P``) beat the
    dense ``P``-tap products (measured: not yet at 5x5, where gathering four taps costs what 25 dense
    multiply-adds do).
    """
    if method not in KERNEL_METHODS:
        raise ValueError(f"method must be one of {KERNEL_METHODS}, got {method!r}")
    if method != "matrix":
        return method
    pixels = height * width
    if in_per_group >= pixels:
        return "cumulative"
    return "sparse" if pixels >= SPARSE_MIN_PIXELS else "stepwise"


def generate_kernel(
    weight: Tensor,
    scale: Tensor,
    rotation: Tensor,
    translation_x: Tensor,
    translation_y: Tensor,
    method: KernelMethod = "matrix",
    channels_last: bool = False,
    time_range: tuple[int, int] | None = None,
) -> Tensor:
    """Build the 3D kernel of a 3TConv (eqs. 2-5), batched over output and input channels.

    Args:
        weight: ``(out, in/groups, kH, kW)`` the 2D filter ``K_1``.
        scale, rotation, translation_x, translation_y: ``(out, D-1)``; rotation in radians, translations in
            ``affine_grid`` units (align_corners=True).
        method: one of :data:`KERNEL_METHODS`, see the module notes; ``"matrix"`` (default) picks the fastest
            matrix form for the shape.
        channels_last: return the kernel in ``torch.channels_last_3d`` memory layout (same values), written
            directly in that layout.
        time_range: ``(start, stop)`` to build only slices ``start .. stop-1`` (``0 <= start < stop <= D``);
            the steps after ``stop - 1`` are not computed. ``None``: all ``D`` slices.

    Returns:
        ``(out, in/groups, stop - start, kH, kW)``; over the full range slice 0 is ``weight`` and slice ``t+1``
        the warp of slice ``t`` by step ``t``'s parameters.
    """
    params = (scale, rotation, translation_x, translation_y)
    _check_parameters(weight, params)
    _, cin, kh, kw = weight.shape
    algorithm = resolve_method(method, cin, kh, kw)
    if algorithm == "sparse":  # measured on CPUs only; dense (deterministic) on other devices and in the composed
        # form (compile, forward-mode AD), which has dense matrices only
        algorithm = "grid_sample" if weight.device.type == "cpu" and not fused.composed_only() else "stepwise"
    depth = scale.shape[1] + 1
    start, stop = (0, depth) if time_range is None else time_range
    if not 0 <= start < stop <= depth:
        raise ValueError(f"time_range must satisfy 0 <= start < stop <= D = {depth}, got {time_range}")
    if stop == 1:
        kernel = weight.unsqueeze(2)
    else:
        steps = stop - 1
        if algorithm == "grid_sample":
            used = [p[:, :steps].to(weight.dtype) for p in params]  # steps after stop-1 are unused
            slices = _slices_grid_sample(weight, affine_theta(*used))
            kernel = torch.stack(slices[start:], dim=2)
        else:
            packed = fused.pack(*params)  # (4, out, D-1): one operation, and one slice for the unused steps
            packed = packed if steps == depth - 1 else packed[:, :, :steps]
            packed = packed if packed.dtype == weight.dtype else packed.to(weight.dtype)
            mats = fused.step_matrices(packed, kh, kw)  # (out, steps, P, P)
            if algorithm == "cumulative":
                stacked = fused.cumulative_stack(mats)  # rows 0 .. P-1: the identity
                return fused.kernel_product(weight, stacked, start, stop, channels_last, identity_first=True)
            return fused.stepwise_kernel(weight, mats, start, channels_last)
    if channels_last and not kernel.is_contiguous(memory_format=torch.channels_last_3d):
        kernel = kernel.contiguous(memory_format=torch.channels_last_3d)
    return kernel


def _slices_grid_sample(weight: Tensor, theta: Tensor) -> list[Tensor]:
    """Warp slice by slice with ``F.affine_grid`` / ``F.grid_sample`` (the reference)."""
    slices = [weight]
    current = weight
    plain = fused.composed_only()  # forward-mode AD, functorch, torch.compile: torch's own grid_sample
    for step in theta.unbind(1):
        grid = F.affine_grid(step, list(weight.shape), align_corners=True)
        current = grid_sample_warp(current, grid, plain)
        slices.append(current)
    return slices
