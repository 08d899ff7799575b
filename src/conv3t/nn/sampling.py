"""The bilinear sampling of a 3TConv step composed from autograd operations: the readable reference form.

Eq. 3 (:func:`affine_theta`), eq. 4 (:func:`sampling_grid`) and eq. 5 as separable bilinear weights
(:func:`sampling_weights`) or dense ``P x P`` matrices (:func:`sampling_matrices`, ``P = kH*kW``), and their
cumulative products (:func:`cumulative_sampling_matrices`). Conventions: see :mod:`conv3t.nn.functional`.
:mod:`conv3t.nn.fused` computes the same values in fewer operations and differentiates these ones for
second derivatives and under ``torch.compile``.

**The derivative at whole pixels.** A bilinear weight is a tent ``max(0, 1 - |x - k|)`` of the sampling
position ``x``: it has a kink wherever ``x`` is a whole pixel, which is where every position lies at the
identity start, after exact one-pixel shifts and exact quarter turns. There the derivative used is the
*symmetric* one, the average of the two one-sided derivatives: ``d weight_k / dx = (1/2) ([k = x + 1] -
[k = x - 1])``, i.e. the sample's derivative is the central difference ``(v[x + 1] - v[x - 1]) / 2`` of the
two neighbouring pixels. A position counts as whole when it lies within :func:`whole_pixel_tolerance` of an
integer, so that rounding (which differs between the ways the positions are computed) cannot pick a side; its
value is then the pixel's, exactly. Every kernel method uses this rule (tested against finite differences of
an independent numpy reference).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "affine_theta",
    "composed_step_matrices",
    "cumulative_sampling_matrices",
    "position_matrices",
    "sampling_grid",
    "sampling_matrices",
    "sampling_weights",
    "whole_pixel_tolerance",
]

#: whole-pixel band in units of the dtype's machine epsilon times the kernel's larger side (see
#: :func:`whole_pixel_tolerance`): ~17x the rounding error of the positions (measured in float32 against
#: float64: at most ~7.3 eps * k px for kernels 3x3 to 11x11, |t| <= 2, 0.25 <= s <= 2.75, any rotation)
_WHOLE_PIXEL_ULPS = 128
#: the band never grows beyond this (low-precision dtypes), in pixels
_WHOLE_PIXEL_MAX = 2.0**-6


def whole_pixel_tolerance(dtype: torch.dtype, height: int, width: int) -> float:
    """Distance in source pixels within which a sampling position counts as a whole pixel.

    ``128 * eps * max(kH, kW)`` with ``eps`` the dtype's machine epsilon, at most ``1/64``: 1.1e-4 px for a
    7x7 kernel in float32 (4.6e-5 px for 3x3), 2.0e-13 px in float64. At such positions the symmetric
    derivative is used (module notes) and the sample is that pixel exactly (weights 1 and 0), so that
    every method gives the same kernel bit for bit there (exact ties downstream, e.g. max pooling over the
    equal frames of an identity-initialised stem, then break alike).
    """
    return min(_WHOLE_PIXEL_ULPS * torch.finfo(dtype).eps * max(height, width), _WHOLE_PIXEL_MAX)


def affine_theta(scale: Tensor, rotation: Tensor, translation_x: Tensor, translation_y: Tensor) -> Tensor:
    """Affine matrices of eq. 3.

    Args:
        scale, rotation, translation_x, translation_y: tensors of one shape ``S`` (typically ``(out, D-1)``);
            rotation in radians, translations in ``affine_grid`` units.

    Returns:
        ``(*S, 2, 3)`` matrices ``[[s cos r, -s sin r, s(tx cos r - ty sin r)],
        [s sin r, s cos r, s(tx sin r + ty cos r)]]``.
    """
    cos, sin = torch.cos(rotation), torch.sin(rotation)
    a11, a12 = scale * cos, -scale * sin
    a21, a22 = scale * sin, scale * cos
    a13 = translation_x * a11 + translation_y * a12
    a23 = translation_x * a21 + translation_y * a22
    row1 = torch.stack((a11, a12, a13), dim=-1)
    row2 = torch.stack((a21, a22, a23), dim=-1)
    return torch.stack((row1, row2), dim=-2)


def _base_coordinates(size: int, like: Tensor) -> Tensor:
    """Pixel centres in ``affine_grid`` coordinates (align_corners=True), shape ``(size,)``."""
    if size == 1:  # affine_grid places a single pixel at the centre
        return torch.zeros(1, dtype=like.dtype, device=like.device)
    return torch.linspace(-1.0, 1.0, size, dtype=like.dtype, device=like.device)


def sampling_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """Sampling positions of every kernel pixel in *source pixel* units.

    Args:
        theta: ``(*B, 2, 3)`` affine matrices (eq. 3).
        height, width: kernel size ``kH``, ``kW``.

    Returns:
        ``(*B, kH*kW, 2)``: for output pixel ``(i, j)`` (row-major index ``i*kW + j``) the source position
        ``(x, y)`` in pixels, 0 at the first column/row (eq. 4 followed by grid_sample's unnormalisation).
    """
    ys = _base_coordinates(height, theta)
    xs = _base_coordinates(width, theta)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack((gx.reshape(-1), gy.reshape(-1), torch.ones_like(gx).reshape(-1)), dim=-1)  # (P, 3)
    grid = base @ theta.transpose(-1, -2)  # (*B, P, 2), normalised coordinates
    # unnormalise with Python scalars: a tensor built from a list would be a blocking host-to-device copy
    x = (grid[..., 0] + 1) * ((width - 1) / 2)
    y = (grid[..., 1] + 1) * ((height - 1) / 2)
    return torch.stack((x, y), dim=-1)


def _axis_weights(pos: Tensor, size: int, tolerance: float) -> Tensor:
    """Linear-interpolation weights along one axis, with the symmetric derivative at whole pixels.

    Args:
        pos: ``(..., P)`` source positions in pixels.
        size: number of source pixels along this axis.
        tolerance: :func:`whole_pixel_tolerance` of the kernel.

    Returns:
        ``(..., P, size)`` weights; positions outside ``[-1, size]`` get zero weight (zero padding).
    """
    nearest = torch.round(pos).detach()
    whole = (pos.detach() - nearest).abs() <= tolerance
    # a whole-pixel position is that pixel exactly (value only; the derivative stays 1): ``pos + (n - pos)``
    # is ``n`` exactly because ``n - pos`` is (Sterbenz), so the weights are exactly 1 and 0
    pos = pos + (torch.where(whole, nearest, pos.detach()) - pos.detach())
    lower = torch.floor(pos).detach()
    frac = pos - lower
    idx = torch.arange(size, dtype=pos.dtype, device=pos.device)
    lower = lower.unsqueeze(-1)
    frac = frac.unsqueeze(-1)
    below, above = (idx == lower).to(pos.dtype), (idx == lower + 1).to(pos.dtype)
    weights = (1 - frac) * below + frac * above  # autograd's slope: above - below, the one on the right
    # at whole pixels the slope becomes the average of both sides: a term of value 0 whose derivative adds
    # the difference (the correction is a constant, so second derivatives are unchanged: zero in x)
    nearest = nearest.unsqueeze(-1)
    whole = whole.unsqueeze(-1).to(pos.dtype)
    central = 0.5 * ((idx == nearest + 1).to(pos.dtype) - (idx == nearest - 1).to(pos.dtype))
    correction = whole * (central - (above - below))
    return weights + (frac - frac.detach()) * correction


def sampling_weights(theta: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Separable bilinear weights of the warp: ``M[p, (i, j)] = wy[p, i] * wx[p, j]``.

    Args:
        theta: ``(*B, 2, 3)`` affine matrices.
        height, width: kernel size ``kH``, ``kW``.

    Returns:
        ``wy`` of shape ``(*B, P, kH)`` and ``wx`` of shape ``(*B, P, kW)``, ``P = kH*kW``.
    """
    pos = sampling_grid(theta, height, width)
    tol = whole_pixel_tolerance(pos.dtype, height, width)
    return _axis_weights(pos[..., 1], height, tol), _axis_weights(pos[..., 0], width, tol)


def sampling_matrices(theta: Tensor, height: int, width: int) -> Tensor:
    """Dense bilinear sampling matrices equivalent to ``grid_sample`` of a ``kH x kW`` map.

    Args:
        theta: ``(*B, 2, 3)`` affine matrices.
        height, width: kernel size ``kH``, ``kW``.

    Returns:
        ``(*B, P, P)`` with ``P = kH*kW``: ``warped.flatten() = M @ source.flatten()`` (row-major pixels).
    """
    wy, wx = sampling_weights(theta, height, width)
    return (wy.unsqueeze(-1) * wx.unsqueeze(-2)).flatten(-2)


def cumulative_sampling_matrices(mats: Tensor) -> Tensor:
    """Products of consecutive step matrices, identity first.

    Args:
        mats: ``(*B, S, P, P)`` sampling matrices ``M_1 .. M_S`` of one filter's steps.

    Returns:
        ``(*B, S + 1, P, P)``: ``C_0 = I`` and ``C_t = M_t @ C_{t-1}``, so slice ``t`` of the kernel is
        ``C_t @ K_1.flatten()``.
    """
    *batch, _, p, _ = mats.shape
    cumulative = [torch.eye(p, dtype=mats.dtype, device=mats.device).expand(*batch, p, p)]
    for t, step in enumerate(mats.unbind(-3)):  # unbind: one stack in the backward, not S zero-filled copies
        cumulative.append(step if t == 0 else step @ cumulative[-1])
    return torch.stack(cumulative, dim=-3)


def composed_step_matrices(
    scale: Tensor, rotation: Tensor, translation_x: Tensor, translation_y: Tensor, height: int, width: int
) -> Tensor:
    """``sampling_matrices(affine_theta(...))`` straight from ``s R(r) (b + t)``, without the 2x3 matrix.

    Args:
        scale, rotation, translation_x, translation_y: ``(n, S)``.
        height, width: kernel size ``kH``, ``kW``.

    Returns:
        ``(n, S, P, P)``; the values agree with :func:`sampling_matrices` to rounding.
    """
    ys = _base_coordinates(height, scale)
    xs = _base_coordinates(width, scale)
    base_x = xs.repeat(height)  # (P,), row-major pixels
    base_y = ys.repeat_interleave(width)
    cos = (scale * torch.cos(rotation)).unsqueeze(-1)  # (out, S, 1)
    sin = (scale * torch.sin(rotation)).unsqueeze(-1)
    u = translation_x.unsqueeze(-1) + base_x  # (out, S, P)
    v = translation_y.unsqueeze(-1) + base_y
    pos_x = (cos * u - sin * v + 1) * ((width - 1) / 2)  # source pixel positions, as sampling_grid
    pos_y = (sin * u + cos * v + 1) * ((height - 1) / 2)
    return position_matrices(pos_x, pos_y, height, width)


def position_matrices(pos_x: Tensor, pos_y: Tensor, height: int, width: int) -> Tensor:
    """Dense bilinear sampling matrices of a ``kH x kW`` source at given positions (autograd operations).

    Args:
        pos_x, pos_y: ``(*B, Q)`` source positions in pixels (0 at the first column / row).
        height, width: source size ``kH``, ``kW``.

    Returns:
        ``(*B, Q, kH*kW)``: ``sampled = M @ source.flatten()`` (row-major pixels), zero padding; the symmetric
        derivative at whole pixels (module notes).
    """
    tol = whole_pixel_tolerance(pos_x.dtype, height, width)
    wy = _axis_weights(pos_y, height, tol)
    wx = _axis_weights(pos_x, width, tol)
    return (wy.unsqueeze(-1) * wx.unsqueeze(-2)).flatten(-2)
