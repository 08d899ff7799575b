"""A plain numpy implementation of eqs. 3-5 of the paper, independent of conv3t's code.

Conventions of the authors' code: ``affine_grid`` with align_corners=True maps kernel pixel ``(i, j)`` (row, col)
to normalised coordinates ``x = -1 + 2 j / (kW - 1)``, ``y = -1 + 2 i / (kH - 1)``; the grid (eq. 4) is
``theta @ (x, y, 1)``; ``grid_sample`` with align_corners=True maps the grid back to source pixels and samples
bilinearly with zeros outside (eq. 5).
"""

from __future__ import annotations

import numpy as np


def theta(s: float, r: float, tx: float, ty: float) -> np.ndarray:
    """Eq. 3."""
    c, n = np.cos(r), np.sin(r)
    return np.array(
        [
            [s * c, -s * n, tx * s * c - ty * s * n],
            [s * n, s * c, tx * s * n + ty * s * c],
        ]
    )


def warp(k: np.ndarray, th: np.ndarray) -> np.ndarray:
    """Eqs. 4-5 for one 2D slice ``k`` of shape (kH, kW)."""
    kh, kw = k.shape
    out = np.zeros_like(k)
    for i in range(kh):
        for j in range(kw):
            x = -1 + 2 * j / (kw - 1) if kw > 1 else 0.0
            y = -1 + 2 * i / (kh - 1) if kh > 1 else 0.0
            gx, gy = th @ np.array([x, y, 1.0])
            # back to source pixel units
            px = (gx + 1) * (kw - 1) / 2
            py = (gy + 1) * (kh - 1) / 2
            acc = 0.0
            for si in range(kh):
                for sj in range(kw):
                    acc += k[si, sj] * max(0.0, 1 - abs(px - sj)) * max(0.0, 1 - abs(py - si))
            out[i, j] = acc
    return out


def kernel(weight: np.ndarray, s: np.ndarray, r: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """(out, in, kH, kW) and (out, D-1) parameters -> (out, in, D, kH, kW), slices built sequentially."""
    out_c, in_c, kh, kw = weight.shape
    depth = s.shape[1] + 1
    result = np.zeros((out_c, in_c, depth, kh, kw))
    for o in range(out_c):
        for c in range(in_c):
            cur = weight[o, c]
            result[o, c, 0] = cur
            for t in range(depth - 1):
                cur = warp(cur, theta(s[o, t], r[o, t], tx[o, t], ty[o, t]))
                result[o, c, t + 1] = cur
    return result


def _tents(pos: np.ndarray, size: int) -> np.ndarray:
    """``(P, size)`` bilinear weights ``max(0, 1 - |pos - k|)`` of positions ``pos (P,)`` in pixels."""
    return np.maximum(0.0, 1 - np.abs(pos[:, None] - np.arange(size)[None, :]))


def warp_matrix(th: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Eqs. 4-5 as a ``(kH*kW, kH*kW)`` matrix (row-major pixels): ``warp(k).ravel() == M @ k.ravel()``."""
    ys, xs = np.meshgrid(
        np.linspace(-1, 1, kh) if kh > 1 else np.zeros(1),
        np.linspace(-1, 1, kw) if kw > 1 else np.zeros(1),
        indexing="ij",
    )
    gx, gy = th @ np.stack((xs.ravel(), ys.ravel(), np.ones(kh * kw)))
    wy, wx = _tents((gy + 1) * (kh - 1) / 2, kh), _tents((gx + 1) * (kw - 1) / 2, kw)
    return (wy[:, :, None] * wx[:, None, :]).reshape(kh * kw, kh * kw)


def kernel_vectorized(weight: np.ndarray, s: np.ndarray, r: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """:func:`kernel` with one matrix per output channel and step (fast enough for finite differences)."""
    out_c, in_c, kh, kw = weight.shape
    depth = s.shape[1] + 1
    result = np.zeros((out_c, in_c, depth, kh * kw))
    for o in range(out_c):
        cur = weight[o].reshape(in_c, kh * kw)
        result[o, :, 0] = cur
        for t in range(depth - 1):
            cur = cur @ warp_matrix(theta(s[o, t], r[o, t], tx[o, t], ty[o, t]), kh, kw).T
            result[o, :, t + 1] = cur
    return result.reshape(out_c, in_c, depth, kh, kw)
