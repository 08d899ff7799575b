"""Kernel generation in few tensor operations: autograd Functions with hand-written backward passes.

What a Conv3T layer costs per call, besides its convolution, is the number of tensor operations that kernel
generation runs: each is a kernel launch on a GPU (a few microseconds) plus dispatch. Composed from autograd
operations, the sampling matrices alone take ~60 operations forward + backward (broadcasts, reductions,
the bilinear weights). The Functions here compute the same values:

* :func:`step_matrices`: the bilinear sampling matrices ``M (n, S, P, P)`` of all steps from the packed
  parameters ``(4, n, S)`` = ``(scale, rotation, translation_x, translation_y)``, with the affine map written
  as one complex product ``pos = c * (s e^{ir}) (t + b) + c`` (``c = (k - 1) / 2`` per axis). ~14 operations
  forward, ~11 backward (the backward is derived by hand, see :class:`_StepMatrices`).
* :func:`cumulative_stack`: ``[C_0 | C_1 | ... | C_S]`` with ``C_t = M_t ... M_1``, ``(n, (S+1)*P, P)``; one
  product per step forward, two backward.
* :func:`kernel_product`: ``K_1 @ C^T`` for the rows of slices ``start .. stop-1``: the whole kernel in one
  batched product (two backward).
* :func:`stepwise_kernel`: slice by slice ``K_{t+1} = K_t M_t^T`` (one product per step, two backward) for
  filters over few input channels, where ``P x P`` cumulative matrices would cost more than the warps.

Exactness: the values are those of the composed operations in :mod:`conv3t.nn.functional` up to rounding.
At whole-pixel sampling positions (identity init, exact one-pixel shifts and quarter turns) the bilinear
weights have kinks; every method, these included, uses the symmetric derivative there (the average of the
two one-sided ones, see :mod:`conv3t.nn.sampling`). Second derivatives: a backward that runs with
``create_graph=True`` differentiates the composed operations instead (recomputed from the saved inputs), so
double backward is exact and no hand-written second derivative exists to be wrong.
All are deterministic (products and elementwise operations only; no scatter, no atomics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import is_fake
from torch.autograd import forward_ad

from conv3t.nn.sampling import composed_step_matrices, cumulative_sampling_matrices, whole_pixel_tolerance

__all__ = ["FUSED_DTYPES", "cumulative_stack", "kernel_product", "pack", "step_matrices", "stepwise_kernel"]

#: dtypes with a complex counterpart that the fast path uses; others take the composed operations
FUSED_DTYPES = (torch.float32, torch.float64)

_constants: dict[tuple[int, int, torch.dtype, torch.device], tuple[Any, ...]] = {}

#: :func:`kernel_product` computes no gradient for the identity rows ``C_0`` (False: it does, to measure)
skip_identity_slice: bool = True


def pack(scale: Tensor, rotation: Tensor, translation_x: Tensor, translation_y: Tensor) -> Tensor:
    """The four temporal parameters, each ``(n, S)``, as one ``(4, n, S)`` tensor (one operation)."""
    return torch.stack((scale, rotation, translation_x, translation_y))


def _geometry(height: int, width: int, like: Tensor) -> tuple[Any, ...]:
    """Constants of a ``kH x kW`` kernel, cached per size, dtype and device (building them costs operations).

    Returns ``base (P,)`` complex pixel centres ``x + iy`` in ``affine_grid`` units (row-major pixels),
    ``half (2, 1, 1, 1)`` = ``((kW-1)/2, (kH-1)/2)``, ``idx (2, K, 2, 1)`` (for the lower/upper neighbour,
    the weight ``k`` and the x/y axis: ``k`` minus the neighbour's offset; NaN pads the shorter axis: no
    hit), ``flip (2, 1)`` = ``((kW-1)/2, -(kH-1)/2)``, ``signs (4, 1, 1)`` = ``(1, -1, 1, -1)``, ``eye (P, P)``,
    ``ends (P, 2)`` complex ``[b_p, 1]``, ``first (2,)`` complex ``[1, 0]``, ``around (2, K, 2, 1)``
    (``k - 1`` and ``k + 1`` per axis, NaN-padded like ``idx``: the whole pixels next to pixel ``k``) and
    ``tolerance``, the :func:`~conv3t.nn.sampling.whole_pixel_tolerance` of the kernel.
    """
    if is_fake(like):
        # FakeTensorMode (torch.compile's tracing, the fake-CUDA tests) reports the real device: cached real
        # constants would meet fake tensors, and fake ones cached would reach every later real forward
        return _build_geometry(height, width, like)
    key = (height, width, like.dtype, like.device)
    if key not in _constants:
        _constants[key] = _build_geometry(height, width, like)
    return _constants[key]


def _build_geometry(height: int, width: int, like: Tensor) -> tuple[Any, ...]:
    """The constants :func:`_geometry` returns, built on ``like``'s dtype and device."""
    with torch.no_grad():
        opts = {"dtype": like.dtype, "device": like.device}

        def coords(k: int) -> Tensor:
            return torch.linspace(-1.0, 1.0, k, **opts) if k > 1 else torch.zeros(1, **opts)

        xs, ys = coords(width), coords(height)
        base = torch.complex(xs.repeat(height), ys.repeat_interleave(width))
        half = torch.tensor([(width - 1) / 2, (height - 1) / 2], **opts)
        idx = torch.full((max(height, width), 2), float("nan"), **opts)
        idx[:width, 0] = torch.arange(width, **opts)
        idx[:height, 1] = torch.arange(height, **opts)
        flip = half * torch.tensor([1.0, -1.0], **opts)
        signs = torch.tensor([1.0, -1.0, 1.0, -1.0], **opts).view(4, 1, 1)
        eye = torch.eye(height * width, **opts)
        around = torch.stack((idx - 1, idx + 1)).unsqueeze(-1)
        idx = torch.stack((idx, idx - 1)).unsqueeze(-1)
        ends = torch.stack((base, torch.ones_like(base)), dim=-1)
        first = torch.tensor([1.0, 0.0], **opts).to(base.dtype)
        tolerance = whole_pixel_tolerance(like.dtype, height, width)
        half, flip = half.view(2, 1, 1, 1), flip.view(2, 1)
        return (base, half, idx, flip, signs, eye, ends, first, around, tolerance)


def _matrices_forward(packed: Tensor, height: int, width: int) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``M (n, S, P, P)`` and what the backward needs. No autograd here (runs inside ``Function.forward``).

    The bilinear weights are computed with the sampling points innermost (``(K, 2, n*S*P)``), where every
    elementwise operation runs over long contiguous rows (3x faster on CPU than points outermost). ``M`` is
    returned as a strided view of that layout (column-major matrices); the products accept it as it is.
    """
    scale, rotation, tx, ty = packed.unbind(0)
    n, steps = scale.shape
    p = height * width
    _, half, idx, _, _, _, ends, first, around, tolerance = _geometry(height, width, packed)
    turn = torch.polar(torch.ones_like(rotation), rotation)  # e^{ir}, (n, S)
    zoom = turn * scale  # s e^{ir}
    # [t + b, 1] per point, (n, S, P, 2): the backward's two sums over the points are one product with it
    augmented = torch.addcmul(ends, torch.complex(tx, ty).unsqueeze(-1).unsqueeze(-1), first)
    shifted = augmented[..., 0]  # t + b
    moved = zoom.unsqueeze(-1) * shifted
    pos = torch.addcmul(half, torch.stack((moved.real, moved.imag)), half).view(2, -1)  # x, y source pixels
    # whole-pixel positions are that pixel exactly (weights 1 and 0, as in every method: sampling's notes)
    nearest = torch.round(pos)
    whole = (pos - nearest).abs() <= tolerance
    pos = torch.where(whole, nearest, pos)
    lower = torch.floor(pos)
    lo, hi = (lower == idx).to(pos.dtype).unbind(0)  # (K, 2, n*S*P): the pixel below / above each point
    slope = hi - lo  # d weight / d position: the one-sided slope on the right of the position
    weights = torch.addcmul(lo, pos - lower, slope)  # bilinear weights along x, y
    # whole-pixel positions: the symmetric slope, +1/2 for the pixel above and -1/2 for the one below
    up, down = (nearest == around).to(pos.dtype).unbind(0)
    slope = torch.where(whole, (up - down) * 0.5, slope)
    ys = torch.stack((weights[:height, 1], weights[:height, 1], slope[:height, 1]))  # (3, kH, n*S*P)
    xs = torch.stack((weights[:width, 0], slope[:width, 0], weights[:width, 0]))
    outer = ys.unsqueeze(2) * xs.unsqueeze(1)  # (3, kH, kW, n*S*P): M and the slopes of its entries
    mats = outer[0].view(p, n, steps, p).permute(1, 2, 3, 0)
    return mats, (outer[1:], augmented, zoom, turn)


def _matrices_backward(grad: Tensor, saved: tuple[Tensor, ...], height: int, width: int) -> Tensor:
    """``d/d packed`` of ``sum(grad * M)``: the chain rule of :func:`_matrices_forward` written out.

    The position gradients are ``sum(grad * dM/dx)`` and ``sum(grad * dM/dy)`` with the slopes saved by the
    forward. With ``z = s e^{ir}``, ``w = t + b`` and ``pos = c * zw + c`` (complex ``x + iy``), let ``g``
    be the loss gradient of ``zw`` (``c`` times that of the positions). Then ``dz = sum_P g conj(w)``,
    ``dt = conj(z) sum_P g``, ``ds = Re(e^{-ir} dz)`` and ``dr = s Im(e^{-ir} dz)``. Computed conjugated
    (``conj(g)`` from the sign of ``flip``), which needs no conjugate copies of ``w``, ``z``, ``e^{ir}``.
    """
    slopes, augmented, zoom, turn, scale = saved
    n, steps, p, _ = grad.shape  # scale: packed[0]
    grad = grad.permute(3, 0, 1, 2).reshape(height, width, -1)  # points innermost, as the slopes
    gpos = (slopes * grad).sum((1, 2))  # (2, n*S*P): x, y
    flip, signs = _geometry(height, width, grad)[3:5]
    gpos = (gpos * flip).view(2, n, steps, p)
    conj_g = torch.complex(gpos[0], gpos[1])  # conj(g), (n, S, P)
    sums = torch.bmm(conj_g.view(-1, 1, p), augmented.view(-1, p, 2)).view(n, steps, 2)
    conj_dzoom = sums[..., 0]  # sum_P conj(g) w
    conj_dshift = sums[..., 1] * zoom  # z sum_P conj(g)
    conj_q = conj_dzoom * turn
    return torch.stack((conj_q.real, scale * conj_q.imag, conj_dshift.real, conj_dshift.imag)) * signs


def composed_grads(fn: Callable[..., Tensor], inputs: tuple[Tensor, ...], needs: tuple[bool, ...], grad: Tensor):
    """Gradients through the composed (autograd) operations, keeping the graph: the double-backward path.

    ``fn(*inputs)`` recomputes the Function's output from its saved inputs; ``needs`` says which inputs want a
    gradient (``None`` for the others), ``grad`` is the output's gradient.
    """
    wanted = [x for x, need in zip(inputs, needs, strict=False) if need]
    with torch.enable_grad():
        out = fn(*inputs)
        got = iter(torch.autograd.grad(out, wanted, grad, create_graph=True, allow_unused=True))
    return tuple(next(got) if need else None for need in needs)


def _composed_matrices(packed: Tensor, height: int, width: int) -> Tensor:
    return composed_step_matrices(*packed.unbind(0), height, width)


class _StepMatrices(torch.autograd.Function):
    """:func:`_matrices_forward` with the hand-written backward.

    Everything the backward reads is saved through ``save_for_backward`` (never as a ``ctx`` attribute), so
    saved-tensor hooks such as ``torch.autograd.graph.save_on_cpu`` see and move all of it.
    """

    @staticmethod
    def forward(ctx, packed: Tensor, height: int, width: int) -> Tensor:  # type: ignore[override]
        mats, saved = _matrices_forward(packed, height, width)
        ctx.save_for_backward(packed, *saved)
        ctx.size = (height, width)
        return mats

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        packed, *saved = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True
            fn = lambda p: _composed_matrices(p, *ctx.size)  # noqa: E731
            return (*composed_grads(fn, (packed,), (True,), grad), None, None)
        return _matrices_backward(grad, (*saved, packed[0]), *ctx.size), None, None


def composed_only() -> bool:
    """Whether the composed operations must run instead of the fused Functions, which define ``backward`` only.

    That is under ``torch.compile`` (Dynamo traces the composed form), under forward-mode AD (a dual level is
    open: ``torch.autograd.functional.jacobian(..., strategy="forward-mode")``) and under functorch transforms
    (``vmap``, ``jacfwd``). Two cheap global reads, no tensor operation.
    """
    return (
        torch.compiler.is_compiling()
        or forward_ad._current_level >= 0
        or torch._C._functorch.maybe_current_level() is not None
    )


def step_matrices(packed: Tensor, height: int, width: int) -> Tensor:
    """Sampling matrices ``(n, S, P, P)`` of every step from the packed parameters ``(4, n, S)``.

    Same values as :func:`conv3t.nn.functional.sampling_matrices` of :func:`~conv3t.nn.functional.affine_theta`.
    """
    if packed.dtype not in FUSED_DTYPES or composed_only():
        return _composed_matrices(packed, height, width)
    return _StepMatrices.apply(packed, height, width)


def _eye(p: int, like: Tensor) -> Tensor:
    if like.dtype in FUSED_DTYPES:
        key = int(p**0.5)
        if key * key == p:
            return _geometry(key, key, like)[5]
    return torch.eye(p, dtype=like.dtype, device=like.device)


def _composed_cumulative(mats: Tensor) -> Tensor:
    n, steps, p, _ = mats.shape
    return cumulative_sampling_matrices(mats).reshape(n, (steps + 1) * p, p)


class _Cumulative(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mats: Tensor) -> Tensor:  # type: ignore[override]
        n, steps, p, _ = mats.shape
        eye = _eye(p, mats).expand(n, 1, p, p)
        parts = [eye, mats[:, :1]]
        for t in range(1, steps):
            parts.append(torch.bmm(mats[:, t], parts[-1].squeeze(1)).unsqueeze(1))
        out = torch.cat(parts, dim=1)  # (n, S+1, P, P)
        ctx.save_for_backward(mats, out)
        return out.view(n, (steps + 1) * p, p)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        mats, out = ctx.saved_tensors
        n, steps, p, _ = mats.shape
        grad = grad.reshape(n, steps + 1, p, p)
        if torch.is_grad_enabled():
            return composed_grads(_composed_cumulative, (mats,), (True,), grad.reshape(n, -1, p))[0]
        # C_t = M_t C_{t-1}: with G_t the total gradient of C_t, dM_t = G_t C_{t-1}^T, G_{t-1} += M_t^T G_t
        dmats = []
        total = grad[:, steps]
        for t in range(steps, 1, -1):
            dmats.append(torch.bmm(total, out[:, t - 1].transpose(1, 2)))
            total = torch.baddbmm(grad[:, t - 1], mats[:, t - 1].transpose(1, 2), total)
        dmats.append(total)
        # stacked with the points innermost, (P_in, n, S, P_out): the layout of the matrices (no transpose later)
        return torch.stack([d.permute(2, 0, 1) for d in dmats[::-1]], dim=2).permute(1, 2, 3, 0)


def cumulative_stack(mats: Tensor) -> Tensor:
    """``(n, (S+1)*P, P)``: rows ``t*P .. t*P+P-1`` are ``C_t = M_t ... M_1`` (``C_0 = I``) of ``mats (n, S, P, P)``."""
    if composed_only():
        return _composed_cumulative(mats)
    return _Cumulative.apply(mats)


class _KernelProduct(torch.autograd.Function):
    """``kernel[o] = K[o] @ S[o, rows]^T`` for ``K (out, cin, P)``, ``S (out, R, P)`` and rows ``lo .. hi-1``.

    Forward: one batched product over all rows, the identity rows of slice 0 included. Copying ``K`` into
    slice 0 and multiplying only the other rows (issue 20) needs the two parts joined by a ``cat``: 8.2 against
    7.1 ms for GoogLeNet's 3x3 layers on this CPU (``benchmarks/kernel_product.py``). Slice 0 is still ``K``
    bit for bit: each entry is one product by 1 plus exact zeros.

    Backward, two batched products: ``dK = (S^T G^T)^T`` (contraction over the rows, the input channels
    longest and last: with the copy below 10.7 against 15.4 ms for ``G S`` with its 9-wide output rows; ``dK``
    is a transposed view, which the weight's ``reshape`` copies once) and ``dS^T = K^T G`` (long side last); both are
    differentiable, so double backward works. Rows outside ``lo .. hi-1`` (temporally cropped slices) get a
    zero gradient by one padding operation.

    ``first`` (the number of leading rows that are the identity ``C_0``, 0 or ``P``): those rows are a
    constant of :func:`cumulative_stack` (its backward ignores their gradient), so their gradient is not
    computed (a zero by the padding).
    """

    @staticmethod
    def forward(ctx, flat: Tensor, stacked: Tensor, lo: int, hi: int, channels_last: bool, first: int) -> Tensor:  # type: ignore[override]
        skip = first if lo == 0 and hi > first else 0
        ctx.save_for_backward(flat, stacked)
        ctx.rows = (lo, hi, skip)
        used = stacked[:, lo:hi]
        if channels_last:  # (out, rows, cin) memory order: the channels_last_3d layout of the kernel
            return torch.bmm(used, flat.transpose(1, 2)).transpose(1, 2)
        return torch.bmm(flat, used.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None, None]:  # type: ignore[override]
        flat, stacked = ctx.saved_tensors
        lo, hi, skip = ctx.rows
        grad_flat = grad_stacked = None
        if ctx.needs_input_grad[0]:
            grad_flat = torch.bmm(stacked[:, lo:hi].transpose(1, 2), grad.transpose(1, 2)).transpose(1, 2)
        if ctx.needs_input_grad[1]:
            rest = grad[:, :, skip:] if skip else grad
            grad_stacked = torch.bmm(flat.transpose(1, 2), rest).transpose(1, 2)
            if (lo + skip, hi) != (0, stacked.shape[1]):
                grad_stacked = torch.nn.functional.pad(grad_stacked, (0, 0, lo + skip, stacked.shape[1] - hi))
        return grad_flat, grad_stacked, None, None, None, None


def kernel_product(
    weight: Tensor, stacked: Tensor, start: int, stop: int, channels_last: bool, identity_first: bool = False
) -> Tensor:
    """Kernel slices ``start .. stop-1``: ``weight (out, cin, kH, kW)`` times rows of ``stacked (out, R, P)``.

    ``identity_first``: the first ``P`` rows of ``stacked`` are the identity (as :func:`cumulative_stack`
    builds them): they get no gradient (slice 0 is ``weight`` itself, bit for bit, either way).
    Returns ``(out, cin, stop - start, kH, kW)``, in the channels_last_3d layout if asked (written directly).
    """
    out, cin, kh, kw = weight.shape
    p = kh * kw
    first = p if identity_first and skip_identity_slice else 0
    kernel = _KernelProduct.apply(weight.reshape(out, cin, p), stacked, start * p, stop * p, channels_last, first)
    depth = stop - start
    if channels_last:
        return kernel.transpose(1, 2).view(out, depth, kh, kw, cin).permute(0, 4, 1, 2, 3)
    return kernel.view(out, cin, depth, kh, kw)


def _composed_stepwise(flat: Tensor, mats: Tensor, start: int = 0) -> Tensor:
    slices = [flat]
    for step in mats.unbind(1):
        slices.append(torch.bmm(slices[-1], step.transpose(1, 2)))
    return torch.stack(slices[start:], dim=2)  # (out, cin, D - start, P)


class _Stepwise(torch.autograd.Function):
    """Slices ``start .. S`` of ``K_0 = K, K_{t+1} = K_t M_t^T``, one product per step written in place.

    The output is allocated in the kernel's final layout (contiguous or channels_last_3d), viewed as
    ``(out, cin, D', P)``; each product writes its slice there directly.
    """

    @staticmethod
    def forward(
        ctx, flat: Tensor, mats: Tensor, start: int, layout: torch.memory_format, size: tuple[int, int]
    ) -> Tensor:  # type: ignore[override]
        out, cin, p = flat.shape
        steps = mats.shape[1]
        kernel = flat.new_empty(out, cin, steps + 1 - start, *size).contiguous(memory_format=layout)
        view = kernel.view(out, cin, steps + 1 - start, p)
        slices = [flat]
        if start == 0:
            view[:, :, 0] = flat
        for t in range(1, steps + 1):
            target = view[:, :, t - start] if t >= start else None
            slices.append(torch.bmm(slices[-1], mats[:, t - 1].transpose(1, 2), out=target))
        # K_1 .. K_{start-1} are not in the output: saved as intermediates. The slices that are (views of
        # ``kernel``) are read back from the saved output in backward. Holding them as a ``ctx`` attribute
        # instead made a reference cycle output -> node -> ctx -> view -> output that no collector can see
        # through (it runs through C++), so every call's graph leaked (issue 16).
        ctx.save_for_backward(flat, mats, kernel, *slices[1:start])
        ctx.start = start
        return kernel

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None]:  # type: ignore[override]
        flat, mats, kernel, *early = ctx.saved_tensors
        start = ctx.start
        out, cin, p = flat.shape
        steps = mats.shape[1]
        grad = grad.reshape(out, cin, steps + 1 - start, p)
        if torch.is_grad_enabled():
            fn = lambda f, m: _composed_stepwise(f, m, start)  # noqa: E731
            return (*composed_grads(fn, (flat, mats), ctx.needs_input_grad[:2], grad), None, None, None)
        # K_t = K_{t-1} M_t^T: G_{t-1} = grad_{t-1} + G_t M_t (one product per step), then all
        # dM_t = G_t^T K_{t-1} in one batched product over (out, step)
        totals = [grad[:, :, steps - start]]
        for t in range(steps, 0, -1):
            if t - 1 >= start:
                totals.append(torch.baddbmm(grad[:, :, t - 1 - start], totals[-1], mats[:, t - 1]))
            else:
                totals.append(torch.bmm(totals[-1], mats[:, t - 1]))
        total = totals.pop()  # G_0: the gradient of the 2D filter
        later = torch.stack(totals[::-1], dim=1).view(-1, cin, p)  # G_1 .. G_S
        produced = kernel.view(out, cin, steps + 1 - start, p).unbind(2)  # K_start .. K_S
        known = [flat, *early, *produced[1 if start == 0 else 0 :]]  # K_0 .. K_S
        earlier = torch.stack(known[:steps], dim=1).view(-1, cin, p)  # K_0 .. K_{S-1}
        # written with the points innermost, (P_in, out*S*P_out): the layout of the matrices (no transpose later)
        points_last = later.new_empty(p, out * steps, p)  # dM^T per (out, step), batch stride P
        torch.bmm(earlier.transpose(1, 2), later, out=points_last.permute(1, 0, 2))
        dmats = points_last.view(p, out, steps, p).permute(1, 2, 3, 0)
        return total, dmats, None, None, None


def stepwise_kernel(weight: Tensor, mats: Tensor, start: int, channels_last: bool) -> Tensor:
    """Kernel slices ``start .. S`` of ``weight (out, cin, kH, kW)`` warped by ``mats (out, S, P, P)`` in turn.

    Returns ``(out, cin, S + 1 - start, kH, kW)`` (in the channels_last_3d layout if asked).
    """
    out, cin, kh, kw = weight.shape
    flat = weight.reshape(out, cin, kh * kw)
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    if composed_only():
        kernel = _composed_stepwise(flat, mats, start).view(out, cin, -1, kh, kw)
        return kernel.contiguous(memory_format=layout)
    return _Stepwise.apply(flat, mats, start, layout, (kh, kw))
