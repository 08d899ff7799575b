"""The ``"grid_sample"`` kernel method: ``F.grid_sample`` with the project's derivative at whole pixels.

``F.grid_sample``'s backward takes the one-sided derivative on the right of a sampling position that is a
whole pixel, and which side a position computed as ``0.99999994`` or ``1.0000001`` falls on depends on
rounding; the ``"matrix"`` method computes the positions differently and picked the other side in float32
(temporal gradients differing by up to the largest gradient itself at the identity start of 7x7 kernels).
Here the forward and the source's gradient are ``grid_sample``'s own; the grid's gradient is
``grid_sample``'s except at whole-pixel positions (:func:`~conv3t.nn.sampling.whole_pixel_tolerance`),
where it is the symmetric derivative of :mod:`conv3t.nn.sampling`, computed from two more samples half a
pixel to either side: on the two linear pieces around a whole pixel ``r``, ``v(r + 1/2) - v(r - 1/2)`` is
exactly the average of the two one-sided slopes.

Second derivatives: a backward that runs with ``create_graph=True`` differentiates the same warp written as
dense sampling matrices (:func:`~conv3t.nn.sampling.position_matrices`, same rule), as the Functions of
:mod:`conv3t.nn.fused` do. ``F.grid_sample`` itself has none.

Cost: four taps per sampled point, where a dense ``P x P`` matrix multiplies ``P = kH*kW`` per point: the
``"matrix"`` method uses this warp (``resolve_method``'s ``"sparse"``) for filters of 7x7 and more over few
input channels, e.g. the RGB stems, where it measured 2.7x faster than the dense stepwise products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from conv3t.nn.fused import composed_grads
from conv3t.nn.sampling import position_matrices, whole_pixel_tolerance

__all__ = ["grid_sample_warp"]

_BILINEAR, _ZEROS = 0, 0  # grid_sampler_2d's enums for mode="bilinear", padding_mode="zeros"


def _sample(source: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _symmetric_at_whole_pixels(grad_grid: Tensor, grad: Tensor, source: Tensor, grid: Tensor) -> Tensor:
    """``grad_grid (N, kH, kW, 2)`` with the entries of whole-pixel positions replaced by the symmetric rule."""
    height, width = source.shape[-2:]
    tolerance = whole_pixel_tolerance(grid.dtype, height, width)
    columns = []
    for axis, size in enumerate((width, height)):
        if size == 1:  # a 1-pixel axis: the position is always 0 and has no derivative (grid_sample's 0)
            columns.append(grad_grid[..., axis])
            continue
        half = (size - 1) / 2  # source pixels per normalised unit
        pos = (grid[..., axis] + 1) * half
        nearest = torch.round(pos)
        sides = []
        for offset in (0.5, -0.5):
            moved = grid.clone()
            moved[..., axis] = (nearest + offset) / half - 1
            sides.append(_sample(source, moved))
        slope = ((sides[0] - sides[1]) * grad).sum(1) * half  # (N, kH, kW), per normalised unit
        columns.append(torch.where((pos - nearest).abs() <= tolerance, slope, grad_grid[..., axis]))
    return torch.stack(columns, dim=-1)


def _composed_warp(source: Tensor, grid: Tensor) -> Tensor:
    """The warp of :class:`_GridSample` from autograd operations (dense matrices): its double backward."""
    n, c, height, width = source.shape
    pos_x = (grid[..., 0] + 1) * ((width - 1) / 2)  # grid_sample's unnormalisation (align_corners=True)
    pos_y = (grid[..., 1] + 1) * ((height - 1) / 2)
    mats = position_matrices(pos_x.flatten(1), pos_y.flatten(1), height, width)  # (N, Q, kH*kW)
    return torch.bmm(source.flatten(2), mats.transpose(1, 2)).view(n, c, *grid.shape[1:3])


def _whole_pixel_points(grid: Tensor, height: int, width: int) -> Tensor:
    """``(N, kH', kW')``: points whose positions are whole pixels (within the tolerance) along both axes."""
    tolerance = whole_pixel_tolerance(grid.dtype, height, width)
    whole = None
    for axis, size in enumerate((width, height)):
        pos = (grid[..., axis] + 1) * ((size - 1) / 2)  # grid_sample's unnormalisation (align_corners=True)
        near = (pos - torch.round(pos)).abs() <= tolerance
        whole = near if whole is None else whole & near
    assert whole is not None
    return whole


def _snapped_sample(source: Tensor, grid: Tensor) -> Tensor:
    """``_sample`` where a point at a whole pixel (both axes) takes that pixel exactly, as the matrix forms do.

    ``grid_sample`` computes such a position as, e.g., ``0.9999999999999999`` and returns ``1e-16`` of one
    pixel plus the rest of the other: a kernel that differs from the matrix methods' in the last bit, which
    decides exact ties downstream (max pooling over the identical frames of an identity-initialised stem).
    """
    out = _sample(source, grid)
    whole = _whole_pixel_points(grid, *source.shape[-2:])
    # Always both samples, no ``whole.any()`` shortcut: reading the mask on the host waits for the device
    # (tests/train/test_syncs.py) and is data-dependent under fake CUDA; the nearest sample of a kernel is cheap.
    exact = F.grid_sample(source, grid, mode="nearest", padding_mode="zeros", align_corners=True)
    return torch.where(whole.unsqueeze(1), exact, out)


class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, source: Tensor, grid: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(source, grid)
        return _snapped_sample(source, grid)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        source, grid = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1]]
        if torch.is_grad_enabled():  # create_graph=True
            return composed_grads(_composed_warp, (source, grid), tuple(mask), grad)  # type: ignore[return-value]
        grad_source, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad, source, grid, _BILINEAR, _ZEROS, True, mask
        )
        if not mask[1]:
            return grad_source if mask[0] else None, None
        grad_grid = _symmetric_at_whole_pixels(grad_grid, grad, source, grid)
        return grad_source if mask[0] else None, grad_grid


def grid_sample_warp(source: Tensor, grid: Tensor, plain: bool = False) -> Tensor:
    """``F.grid_sample(source, grid)`` (bilinear, zero padding, align_corners=True) with the symmetric derivative.

    Args:
        source: ``(N, C, kH, kW)`` the maps to warp.
        grid: ``(N, kH', kW', 2)`` sampling positions in normalised coordinates (``F.affine_grid``'s output).
        plain: call ``F.grid_sample`` itself (its one-sided derivative at whole pixels); used under forward-mode
            AD and functorch transforms, which the custom backward does not support.

    Returns:
        ``(N, C, kH', kW')``; twice differentiable (module notes).
    """
    if plain:
        return _sample(source, grid)
    return _GridSample.apply(source, grid)
