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

Interchangeable implementations (same values, same gradients; ``method`` of :func:`generate_kernel`):

* ``"cumulative"`` expresses each bilinear warp of a ``kH x kW`` filter as a dense ``P x P`` sampling matrix
  ``M_t`` (``P = kH*kW``) per output channel and step, multiplies them into cumulative matrices
  ``C_t = M_t ... M_1`` (``C_0 = I``; ``out * D * P^3``) and builds the whole kernel with ONE batched product
  ``K_1 (out, in/g, P) @ [C_0 | C_1 | ... | C_{D-1}]^T (out, P, D*P)`` written straight into the
  ``(out, in/g, D, kH, kW)`` layout (or the channels_last_3d one). Its backward is two batched products over
  the kernel-sized gradient (``dK_1`` and ``dC``); everything else touches only the small matrices.
* ``"separable"`` warps slice by slice with the separable bilinear weights ``wy (P, kH)``, ``wx (P, kW)``
  (``M = wy (x) wx``): a batched product along x, a weighted sum along y; ``out*in*P*(kH+kW)`` per step and
  no ``P x P`` matrices, which pays for 7x7 filters over few input channels.
* ``"matrix"`` (default) picks ``"cumulative"`` when ``in/groups >= kH*kW``, else ``"separable"``
  (:func:`resolve_method`); measured in ``benchmarks/layers.py``.
* ``"sequential"`` applies the dense ``M_t`` slice by slice (the first implementation; kept to measure).
* ``"grid_sample"`` calls ``F.affine_grid`` / ``F.grid_sample`` and serves as the reference. It has no double
  backward, and its CUDA backward is not deterministic (it refuses ``torch.use_deterministic_algorithms``).

All but ``"grid_sample"`` are built from products and sums only: deterministic and twice differentiable.
The bilinear weights are built from ``floor`` exactly as ``grid_sample`` builds them, so the sub-gradient at
integer sampling positions (e.g. at identity init) is the same forward difference in all of them.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

KernelMethod = Literal["matrix", "cumulative", "separable", "sequential", "grid_sample"]
KERNEL_METHODS: tuple[str, ...] = ("matrix", "cumulative", "separable", "sequential", "grid_sample")

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


def sampling_weights(theta: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Separable bilinear weights of the warp: ``M[p, (i, j)] = wy[p, i] * wx[p, j]``.

    Args:
        theta: ``(*B, 2, 3)`` affine matrices.
        height, width: kernel size ``kH``, ``kW``.

    Returns:
        ``wy`` of shape ``(*B, P, kH)`` and ``wx`` of shape ``(*B, P, kW)``, ``P = kH*kW``.
    """
    pos = sampling_grid(theta, height, width)
    return _axis_weights(pos[..., 1], height), _axis_weights(pos[..., 0], width)


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


def _check_parameters(weight: Tensor, params: tuple[Tensor, ...]) -> None:
    if weight.dim() != 4:
        raise ValueError(f"weight must be (out, in/groups, kH, kW), got shape {tuple(weight.shape)}")
    shape = params[0].shape
    for name, p in zip(("scale", "rotation", "translation_x", "translation_y"), params, strict=True):
        if p.dim() != 2 or p.shape != shape or p.shape[0] != weight.shape[0]:
            raise ValueError(
                f"{name} must have shape (out, D-1) = ({weight.shape[0]}, D-1) like scale, got {tuple(p.shape)}"
            )


def resolve_method(method: KernelMethod, in_per_group: int, height: int, width: int) -> str:
    """The concrete algorithm behind ``method``: ``"matrix"`` picks ``"cumulative"`` when ``in/groups >= kH*kW``.

    The cumulative form costs ``out*D*P^3`` for the matrix products plus one product of ``out*in*D*P^2``;
    the separable one costs ``out*in*(D-1)*P*(kH+kW)`` in ``D-1`` dependent steps. With many input channels
    per filter (every 3x3 layer of the networks) the single product wins; with few (RGB stems with 7x7
    filters) building ``P x P`` matrices costs more than the warps themselves.
    """
    if method not in KERNEL_METHODS:
        raise ValueError(f"method must be one of {KERNEL_METHODS}, got {method!r}")
    if method != "matrix":
        return method
    return "cumulative" if in_per_group >= height * width else "separable"


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
        channels_last: return the kernel in ``torch.channels_last_3d`` memory layout (same values); the
            cumulative form writes that layout directly.
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
    depth = scale.shape[1] + 1
    start, stop = (0, depth) if time_range is None else time_range
    if not 0 <= start < stop <= depth:
        raise ValueError(f"time_range must satisfy 0 <= start < stop <= D = {depth}, got {time_range}")
    if stop == 1:
        kernel = weight.unsqueeze(2)
    else:
        steps = stop - 1
        used = [p if p.shape[1] == steps else p[:, :steps] for p in params]  # steps after stop-1 are unused
        used = [p if p.dtype == weight.dtype else p.to(weight.dtype) for p in used]
        if algorithm == "cumulative":
            return _kernel_cumulative(weight, _step_matrices(*used, kh, kw), start, channels_last)
        theta = affine_theta(*used)  # (out, steps, 2, 3)
        if algorithm == "grid_sample":
            slices = _slices_grid_sample(weight, theta)
        elif algorithm == "separable":
            slices = _slices_separable(weight, theta)
        else:
            slices = _slices_dense(weight, theta)
        kernel = torch.stack(slices[start:], dim=2)
    if channels_last and not kernel.is_contiguous(memory_format=torch.channels_last_3d):
        kernel = kernel.contiguous(memory_format=torch.channels_last_3d)
    return kernel


class _KernelProduct(torch.autograd.Function):
    """``kernel[o] = K[o] @ S[o]^T`` for ``K (out, cin, P)`` and ``S (out, D*P, P)``, batched over ``out``.

    The same product autograd would differentiate, with a backward that orders both batched products so that
    their output has the long dimension last (the product alone measured ~2x faster on CPU than autograd's
    ``dK = G @ S``, whose output rows have only ``P`` columns). The backward is made of differentiable
    products, so double backward works.
    """

    @staticmethod
    def forward(ctx, flat: Tensor, stacked: Tensor, channels_last: bool) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(flat, stacked)
        if channels_last:  # (out, D*P, cin) memory order: the channels_last_3d layout of the kernel
            return torch.bmm(stacked, flat.transpose(1, 2)).transpose(1, 2)
        return torch.bmm(flat, stacked.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        flat, stacked = ctx.saved_tensors
        grad_flat = grad_stacked = None
        if ctx.needs_input_grad[0]:
            grad_flat = torch.bmm(stacked.transpose(1, 2), grad.transpose(1, 2)).transpose(1, 2)
        if ctx.needs_input_grad[1]:
            grad_stacked = torch.bmm(flat.transpose(1, 2), grad).transpose(1, 2)
        return grad_flat, grad_stacked, None


def _step_matrices(
    scale: Tensor, rotation: Tensor, translation_x: Tensor, translation_y: Tensor, height: int, width: int
) -> Tensor:
    """``sampling_matrices(affine_theta(...))`` in fewer operations: ``s R(r) (b + t)`` without the 2x3 matrix.

    Every tensor operation costs a few microseconds in the forward and again in the backward, which is what
    generation costs for the small layers; the values agree with :func:`sampling_matrices` to rounding.
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
    wy = _axis_weights(pos_y, height)
    wx = _axis_weights(pos_x, width)
    return (wy.unsqueeze(-1) * wx.unsqueeze(-2)).flatten(-2)


def _kernel_cumulative(weight: Tensor, mats: Tensor, start: int, channels_last: bool) -> Tensor:
    """One batched product ``K_1 @ [C_start | ... | C_{stop-1}]^T``; see the module notes."""
    out, cin, kh, kw = weight.shape
    p = kh * kw
    cumulative = cumulative_sampling_matrices(mats)[:, start:]  # (out, D', P, P)
    depth = cumulative.shape[1]
    stacked = cumulative.reshape(out, depth * p, p)  # row t*P + i: output pixel i of slice t
    kernel = _KernelProduct.apply(weight.reshape(out, cin, p), stacked, channels_last)  # (out, cin, D'*P)
    if channels_last:
        return kernel.transpose(1, 2).view(out, depth, kh, kw, cin).permute(0, 4, 1, 2, 3)
    return kernel.view(out, cin, depth, kh, kw)


def _slices_separable(weight: Tensor, theta: Tensor) -> list[Tensor]:
    """Warp slice by slice with the separable weights: a product along x, then a weighted sum along y."""
    out, cin, kh, kw = weight.shape
    wy, wx = sampling_weights(theta, kh, kw)  # (out, S, P, kH), (out, S, P, kW)
    wy = wy.transpose(-1, -2).unsqueeze(2)  # (out, S, 1, kH, P)
    slices = [weight]
    current = weight
    for step_wy, step_wx in zip(wy.unbind(1), wx.unbind(1)):
        along_x = torch.bmm(current.reshape(out, cin * kh, kw), step_wx.transpose(1, 2))  # (out, cin*kH, P)
        current = (along_x.view(out, cin, kh, kh * kw) * step_wy).sum(2).view(out, cin, kh, kw)
        slices.append(current)
    return slices


def _slices_dense(weight: Tensor, theta: Tensor) -> list[Tensor]:
    """Warp slice by slice with the dense ``P x P`` matrices (the first implementation; kept to measure)."""
    out, cin, kh, kw = weight.shape
    mats = sampling_matrices(theta, kh, kw)  # (out, S, P, P)
    slices = [weight]
    current = weight.reshape(out, cin, kh * kw)
    for step in mats.unbind(1):
        current = torch.bmm(current, step.transpose(1, 2))  # (out, cin, P)
        slices.append(current.view(out, cin, kh, kw))
    return slices


def _slices_grid_sample(weight: Tensor, theta: Tensor) -> list[Tensor]:
    """Warp slice by slice with ``F.affine_grid`` / ``F.grid_sample`` (the reference)."""
    slices = [weight]
    current = weight
    for step in theta.unbind(1):
        grid = F.affine_grid(step, list(weight.shape), align_corners=True)
        current = F.grid_sample(current, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        slices.append(current)
    return slices
