"""The covariance of two pixels of a rendered stimulus, exactly, from the texture's autocorrelation.

A stimulus pixel shows the texture at a continuous position ``q + o``: ``q`` is fixed by the motion, the frame
and the pixel (:func:`conv3t.verify.stimuli.source_positions`), ``o`` is the view's random offset, uniform over
the periodic ``S x S`` texture. Bilinear sampling makes the pixel ``sum_a tent(q + o - a) T[a]`` (``tent`` the
separable triangle function). With ``R(n) = E[T[a] T[a + n]]`` the texture's autocorrelation, averaging over
the offset gives, for two pixels whose texture positions differ by ``d``,

    C(d) = E[pixel_1 pixel_2] = sum_n B(d + n) R(n),

``B = tent * tent`` the separable cubic B-spline (support ``(-2, 2)`` per axis): 16 lattice terms, a smooth
function of ``d``. This does not depend on where the two pixels are, only on ``d``, which is what makes a
linear layer's expected response energy a quadratic form of its kernel (:mod:`conv3t.verify.closed_form`).

``R`` is stored as a sum of separable terms ``sum_r w_r U_r(n_y) V_r(n_x)`` (an SVD of the ``S x S`` table,
truncated only where a singular value is below ``1e-12`` of the largest): the default noise spectrum is a
separable Gaussian minus its DC term, i.e. two terms, and ``C`` then costs two products of 1D cubic
interpolations per pixel pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from conv3t.verify.stimuli import texture_amplitude

__all__ = ["SEPARABLE_RANK", "TextureCovariance", "autocorrelation", "noise_autocorrelation"]

#: lag-table entries gathered at once
_ELEMENTS = 1 << 22
#: the most separable terms evaluated as such; a table needing more is summed over its 16 lags directly
SEPARABLE_RANK = 4


def _noise_parts(size: int, exponent: float, cutoff: float, highcut: float) -> tuple[Tensor, float]:
    """``noise_autocorrelation = table + constant``: the table of the spectrum with its DC term restored
    (separable, one SVD term, for the default Gaussian roll-off) and the constant that removes it again."""
    amplitude = texture_amplitude(size, exponent, cutoff, highcut)
    amplitude[0, 0] = 1.0 / (cutoff / size) ** exponent  # the spectrum's value at f = 0 (removed in the texture)
    power = amplitude**2
    table = torch.fft.ifft2(power).real
    constant = -float(power[0, 0]) / size**2
    norm = float(table[0, 0]) + constant
    return table / norm, constant / norm


def noise_autocorrelation(size: int = 256, exponent: float = 0.0, cutoff: float = 2.0, highcut: float = 0.2) -> Tensor:
    """``R(n)`` of :func:`conv3t.verify.stimuli.noise_texture`'s independent channels (``shared = 0``), over
    texture draws: ``(size, size)`` float64, ``[n_y, n_x]`` with periodic lags, ``R[0, 0] = 1`` (each channel
    is normalised to unit variance; the per-draw normalisation adds an ``O(1 / size^2)`` deviation, ignored)."""
    table, constant = _noise_parts(size, exponent, cutoff, highcut)
    return table + constant


def autocorrelation(texture: Tensor) -> Tensor:
    """The circular autocorrelation of one texture, averaged over its channels: ``(C, S, S) -> (S, S)``
    float64, ``[n_y, n_x]``, ``R(n) = mean_a T[a] T[a + n]`` (what averaging over offsets of *this* texture
    converges to, for one channel)."""
    t = texture.detach().double()
    spectrum = torch.fft.fft2(t)
    r = torch.fft.ifft2(spectrum.abs() ** 2).real / (t.shape[-1] * t.shape[-2])
    return r.mean(dim=0)


def _bspline_taps(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x -> (first lattice lag, (..., 4) weights)``: ``sum_n B3(x + n) u(n)`` has its four terms at
    ``n = -floor(x) + j``, ``j = -2..1``, with weights ``B3(f + j)``, ``f = x - floor(x)``."""
    i = torch.floor(x)
    f = x - i
    g = 1.0 - f
    w = torch.stack((f**3 / 6, 2 / 3 - g * g + g**3 / 2, 2 / 3 - f * f + f**3 / 2, g**3 / 6), dim=-1)
    return (-i).long() - 2, w


def _cubic_coefficients(u: Tensor) -> Tensor:
    """``(S, r) -> (r, 4, S)``: per term and integer cell ``i`` (column ``i mod S``) the coefficients
    ``a_0..a_3`` of ``sum_n B3(i + f + n) u(n) = a_0 + a_1 f + a_2 f^2 + a_3 f^3`` for ``f`` in ``[0, 1)``
    (the four terms of :func:`_bspline_taps`, expanded in ``f``)."""
    size = u.shape[0]
    lag = torch.remainder(-torch.arange(size)[:, None] + torch.arange(-2, 2)[None, :], size)
    u0, u1, u2, u3 = (u[lag[:, j]] for j in range(4))  # u(-i-2), u(-i-1), u(-i), u(-i+1)
    a0 = u1 / 6 + 2 * u2 / 3 + u3 / 6
    a1 = (u1 - u3) / 2
    a2 = (u1 + u3) / 2 - u2
    a3 = u0 / 6 - u1 / 2 + u2 / 2 - u3 / 6
    return torch.stack((a0, a1, a2, a3)).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class TextureCovariance:
    """``C(dx, dy)`` of the module notes, for a periodic autocorrelation ``R ~ sum_r w_r U_r(n_y) V_r(n_x)``.

    Attributes:
        weights: ``(r,)`` singular values kept.
        rows: ``(S, r)`` ``U`` (vertical lags); cols: ``(S, r)`` ``V`` (horizontal lags); float64, CPU.
        table: ``(S, S)`` ``R`` itself, summed directly (16 terms per pair) when more than
            :data:`SEPARABLE_RANK` separable terms would be needed (e.g. one drawn texture's autocorrelation).
        constant: a constant part of ``R`` not in ``rows`` / ``cols`` (in ``table``).
    """

    weights: Tensor
    rows: Tensor
    cols: Tensor
    table: Tensor
    constant: float = 0.0

    @classmethod
    def from_autocorrelation(cls, r: Tensor, constant: float = 0.0, tolerance: float = 1e-12) -> TextureCovariance:
        """From an ``(S, S)`` ``[n_y, n_x]`` autocorrelation table (e.g. :func:`noise_autocorrelation`) plus
        ``constant`` (a constant part kept out of the SVD: it adds itself to ``C``, the B-spline summing to 1)."""
        if r.dim() != 2 or r.shape[0] != r.shape[1]:
            raise ValueError(f"autocorrelation must be (S, S), got shape {tuple(r.shape)}")
        table = r.detach().double().cpu()
        u, s, vh = torch.linalg.svd(table)
        keep = s > tolerance * s[0]
        return cls(s[keep].clone(), u[:, keep].clone(), vh[keep].T.clone(), table + constant, float(constant))

    @classmethod
    def of_noise(
        cls, size: int = 256, exponent: float = 0.0, cutoff: float = 2.0, highcut: float = 0.2
    ) -> TextureCovariance:
        """For :func:`conv3t.verify.stimuli.noise_texture` (``size``, ``exponent``, ``cutoff``, ``highcut``)."""
        return cls.from_autocorrelation(*_noise_parts(size, exponent, cutoff, highcut))

    @staticmethod
    def _axis(coefficients: Tensor, x: Tensor) -> list[Tensor]:
        """``[sum_n B3(x + n) u_r(n mod S)]`` for each term ``r``, each shaped like ``x`` (1D), from the
        ``(r, 4, S)`` :func:`_cubic_coefficients` of ``u`` (Horner in the fractional part, 1D gathers)."""
        i = torch.floor(x)
        f = x - i
        lag = torch.remainder(i.long(), coefficients.shape[-1])
        out = []
        for c in coefficients:
            v = torch.take(c[3], lag)
            for k in (2, 1, 0):
                v.mul_(f).add_(torch.take(c[k], lag))
            out.append(v)
        return out

    def __call__(self, dx: Tensor, dy: Tensor) -> Tensor:
        """Covariance of two pixels whose texture positions differ by ``(dx, dy)`` pixels (any equal shapes,
        float64, on the CPU): same shape, float64."""
        rows, cols = (_cubic_coefficients(t).to(dx.device) for t in (self.rows, self.cols))
        weights = self.weights.to(dx.device)
        flat_x, flat_y = dx.reshape(-1), dy.reshape(-1)
        out = torch.empty_like(flat_x, dtype=torch.float64)
        separable = len(weights) <= SEPARABLE_RANK
        step = max(1, _ELEMENTS // (2 * len(weights) if separable else 16))  # temporaries stay ~100 MB
        for lo in range(0, flat_x.shape[0], step):
            sl = slice(lo, lo + step)
            if separable:
                terms = zip(self._axis(rows, flat_y[sl]), self._axis(cols, flat_x[sl]), weights.tolist())
                out[sl] = sum(a.mul_(b).mul_(w) for a, b, w in terms) + self.constant
            else:
                out[sl] = self._direct(flat_x[sl], flat_y[sl])
        return out.view(dx.shape)

    def _direct(self, dx: Tensor, dy: Tensor) -> Tensor:
        """``sum_n B(d + n) R(n)`` over the 16 lags, from the full table."""
        size = self.table.shape[0]
        table = self.table.to(dx.device)
        (fy, wy), (fx, wx) = _bspline_taps(dy), _bspline_taps(dx)
        four = torch.arange(4, device=dx.device)
        ly = torch.remainder(fy[:, None] + four, size)[:, :, None]
        lx = torch.remainder(fx[:, None] + four, size)[:, None, :]
        return (table[ly, lx] * wy[:, :, None] * wx[:, None, :]).sum(dim=(1, 2))
