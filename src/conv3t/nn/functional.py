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

Two interchangeable implementations are provided:

* ``"matrix"`` (default) expresses each bilinear warp of a ``kH x kW`` filter as a dense
  ``(kH*kW) x (kH*kW)`` sampling matrix per output channel and step, applied with a batched matrix product.
  It is deterministic, twice differentiable and cheap (no scatter in the backward pass).
* ``"grid_sample"`` calls ``F.affine_grid`` / ``F.grid_sample`` and serves as the reference.

Both give the same values and the same gradients (the bilinear weights are built from ``floor`` exactly as
``grid_sample`` builds them, so the sub-gradient at integer sampling positions, e.g. at identity init, is the
same forward difference).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

KernelMethod = Literal["matrix", "grid_sample"]

__all__ = [
    "KernelMethod",
    "affine_theta",
    "generate_kernel",
    "sampling_grid",
    "sampling_matrices",
]


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
    half = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=theta.dtype, device=theta.device)
    return (grid + 1) * half


def _axis_weights(pos: Tensor, size: int) -> Tensor:
    """Linear-interpolation weights along one axis.

    Args:
        pos: ``(..., P)`` source positions in pixels.
        size: number of source pixels along this axis.

    Returns:
        ``(..., P, size)`` weights; positions outside ``[-1, size]`` get zero weight (zero padding).
    """
    lower = torch.floor(pos).detach()
    frac = pos - lower
    idx = torch.arange(size, dtype=pos.dtype, device=pos.device)
    lower = lower.unsqueeze(-1)
    frac = frac.unsqueeze(-1)
    return (1 - frac) * (idx == lower).to(pos.dtype) + frac * (idx == lower + 1).to(pos.dtype)


def sampling_matrices(theta: Tensor, height: int, width: int) -> Tensor:
    """Dense bilinear sampling matrices equivalent to ``grid_sample`` of a ``kH x kW`` map.

    Args:
        theta: ``(*B, 2, 3)`` affine matrices.
        height, width: kernel size ``kH``, ``kW``.

    Returns:
        ``(*B, P, P)`` with ``P = kH*kW``: ``warped.flatten() = M @ source.flatten()`` (row-major pixels).
    """
    pos = sampling_grid(theta, height, width)
    wx = _axis_weights(pos[..., 0], width)  # (*B, P, kW)
    wy = _axis_weights(pos[..., 1], height)  # (*B, P, kH)
    return (wy.unsqueeze(-1) * wx.unsqueeze(-2)).flatten(-2)


def _check_parameters(weight: Tensor, params: tuple[Tensor, ...]) -> None:
    if weight.dim() != 4:
        raise ValueError(f"weight must be (out, in/groups, kH, kW), got shape {tuple(weight.shape)}")
    shape = params[0].shape
    for name, p in zip(("scale", "rotation", "translation_x", "translation_y"), params, strict=True):
        if p.dim() != 2 or p.shape != shape or p.shape[0] != weight.shape[0]:
            raise ValueError(
                f"{name} must have shape (out, D-1) = ({weight.shape[0]}, D-1) like scale, got {tuple(p.shape)}"
            )


def generate_kernel(
    weight: Tensor,
    scale: Tensor,
    rotation: Tensor,
    translation_x: Tensor,
    translation_y: Tensor,
    method: KernelMethod = "matrix",
) -> Tensor:
    """Build the 3D kernel of a 3TConv (eqs. 2-5), batched over output and input channels.

    Args:
        weight: ``(out, in/groups, kH, kW)`` the 2D filter ``K_1``.
        scale, rotation, translation_x, translation_y: ``(out, D-1)``; rotation in radians, translations in
            ``affine_grid`` units (align_corners=True).
        method: ``"matrix"`` (batched sampling matrices) or ``"grid_sample"`` (reference).

    Returns:
        ``(out, in/groups, D, kH, kW)`` with slice 0 equal to ``weight`` and slice ``t+1`` the warp of
        slice ``t`` by step ``t``'s parameters.
    """
    params = (scale, rotation, translation_x, translation_y)
    _check_parameters(weight, params)
    out, cin, kh, kw = weight.shape
    steps = scale.shape[1]
    if steps == 0:
        return weight.unsqueeze(2)
    theta = affine_theta(*(p.to(weight.dtype) for p in params))  # (out, D-1, 2, 3)
    slices = [weight]
    if method == "matrix":
        mats = sampling_matrices(theta, kh, kw)  # (out, D-1, P, P)
        current = weight.reshape(out, cin, kh * kw)
        for t in range(steps):
            current = current @ mats[:, t].transpose(-1, -2)  # (out, cin, P)
            slices.append(current.reshape(out, cin, kh, kw))
    elif method == "grid_sample":
        current = weight
        for t in range(steps):
            grid = F.affine_grid(theta[:, t], [out, cin, kh, kw], align_corners=True)
            current = F.grid_sample(current, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            slices.append(current)
    else:
        raise ValueError(f"method must be 'matrix' or 'grid_sample', got {method!r}")
    return torch.stack(slices, dim=2)
