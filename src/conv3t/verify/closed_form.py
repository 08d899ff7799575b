"""Layer-mode response energies in closed form: the exact expectation of the sampled measurement.

In layer mode (:mod:`conv3t.verify.network`) one Conv3T layer alone sees ``V`` random views (offsets) of a
texture whose input channels are independent and share one autocorrelation, moved by a known motion. The
layer is linear, so with ``z_p = y_p - bias`` its response at output position ``p`` is ``sum_c k_c . x_c(p)``
(``x_c(p)`` the ``K = D kH kW`` input patch, zero where the patch meets zero padding) and

    E[z_p z_q] = sum_c k_c^T Cov(x(p), x(q)) k_c,

where ``Cov`` is the same for every channel and is built from the pixel covariance ``C`` of
:class:`~conv3t.verify.covariance.TextureCovariance` at the difference of the two pixels' texture positions.
The two numbers the tuning reads per channel (:class:`~conv3t.verify.energies.EnergyAccumulator`) are then
quadratic forms ``sum_c k_c^T S k_c`` of the kernel with one ``K x K`` matrix ``S`` per motion:

* whole-map energy, the per-clip variance over the border-cropped positions ``P`` (``N`` of them), averaged
  over views: ``S_E = mean_{p in P} Cov(x(p)) - Cov(mean_{p in P} x(p))`` (the mean subtraction of the
  per-clip variance is the second term; the bias drops out);
* centre energy, the variance of the responses in the centre window ``W`` over views, time and positions:
  ``S_W = mean_{p in W} Cov(x(p))``. This is the limit of the sampled estimator for many views; with ``V``
  views the sampled one subtracts the grand mean and is lower by ``Var(mean_{p in W} z_p) / V`` (a bias far
  below its sampling error, which shrinks like ``1 / sqrt(V)``).

``S`` depends only on the layer's geometry (kernel size, stride, dilation, padding, clip size) and the motion,
not on its weights, so it is computed once per geometry and shared by every layer of that shape; a layer then
costs one ``K x K`` Gram matrix per output channel. The numbers are exactly what the sampled measurement
(``VerifyConfig(layer_energies="sampled")``) converges to as its views grow, without its sampling noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.verify.covariance import TextureCovariance
from conv3t.verify.energies import centre_window
from conv3t.verify.stimuli import Motion, source_positions
from conv3t.verify.tuning import _crop

__all__ = ["PatchGeometry", "exact_layer_energies", "layer_energies", "patch_covariances", "quadratic_energies"]

#: Pixel pairs evaluated at once (bounds the temporary memory of one covariance table to ~100 MB).
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PatchGeometry:
    """Where a layer's input patches lie in its stimulus clip.

    Attributes:
        kernel, stride, dilation: ``(D, kH, kW)``-ordered triples of the convolution.
        pads: ``(t0, t1, h0, h1, w0, w1)`` padding before / after each of ``T, H, W``.
        padding_mode: ``"zeros"`` (pixels outside the clip are 0) or ``"reflect"``, ``"replicate"``,
            ``"circular"`` (they repeat clip pixels).
        clip: ``(T, H, W)`` of the stimulus clip.
    """

    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    pads: tuple[int, int, int, int, int, int]
    padding_mode: str
    clip: tuple[int, int, int]

    @classmethod
    def of_layer(cls, layer: torch.nn.Module, clip: tuple[int, int, int]) -> PatchGeometry:
        """From a :class:`conv3t.Conv3T` (or anything with its attributes) and the clip it is shown."""
        w0, w1, h0, h1, t0, t1 = layer._reversed_padding_repeated_twice
        return cls(
            tuple(layer.kernel_size), tuple(layer.stride), tuple(layer.dilation),
            (t0, t1, h0, h1, w0, w1), layer.padding_mode, tuple(clip),
        )  # fmt: skip

    @property
    def output(self) -> tuple[int, int, int]:
        """``(T', H', W')`` of the layer's output, as ``torch.nn.Conv3d`` computes it."""
        return tuple(
            (n + self.pads[2 * i] + self.pads[2 * i + 1] - self.dilation[i] * (self.kernel[i] - 1) - 1)
            // self.stride[i]
            + 1
            for i, n in enumerate(self.clip)
        )  # type: ignore[return-value]

    def tap_index(self) -> Tensor:
        """``(T', H', W', K)`` int64: the flat clip pixel (``t * H * W + y * W + x``) each tap of each output
        position reads, ``-1`` where it reads zero padding; taps in the kernel's ``(D, kH, kW)`` order."""
        t, h, w = self.clip
        flat = torch.arange(t * h * w, dtype=torch.float64).view(1, 1, t, h, w)
        pad = (self.pads[4], self.pads[5], self.pads[2], self.pads[3], self.pads[0], self.pads[1])
        if self.padding_mode == "zeros":
            padded = F.pad(flat, pad, value=-1.0)[0, 0]
        else:
            padded = F.pad(flat, pad, mode=self.padding_mode)[0, 0]
        axes = [
            (torch.arange(n)[:, None] * s + torch.arange(k)[None, :] * d)
            for n, s, k, d in zip(self.output, self.stride, self.kernel, self.dilation)
        ]
        tt, yy, xx = axes
        index = padded[
            tt[:, None, None, :, None, None], yy[None, :, None, None, :, None], xx[None, None, :, None, None, :]
        ]
        return index.reshape(*self.output, -1).long()


def _boxes(geometry: PatchGeometry, centre_radius: int, border: float) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """The output positions measured: the energy's border crop and the centre window (the crops of
    :func:`conv3t.verify.tuning.response_energy` and :meth:`EnergyAccumulator.reduce`), as ``(T, H, W)``
    slices."""
    t, h, w = geometry.output
    full = (_crop(t, border), _crop(h, border), _crop(w, border))
    return full, (_crop(t, border), centre_window(h, centre_radius), centre_window(w, centre_radius))


def _is_translation(motion: Motion) -> bool:
    return motion.rotation_cw_deg == 0.0 and motion.zoom == 1.0


def _pixel_covariance(positions: Tensor, covariance: TextureCovariance) -> Tensor:
    """``(P, 2)`` texture positions -> ``(P + 1, P + 1)`` pixel covariance, last row / column zero (the index of
    zero padding). ``C`` is evaluated on the upper triangle only (it is symmetric)."""
    p = positions.shape[0]
    out = torch.zeros(p + 1, p + 1, dtype=torch.float64)
    rows = max(1, _CHUNK // max(p, 1))
    for lo in range(0, p, rows):
        hi = min(lo + rows, p)
        d = positions[lo:hi, None, :] - positions[None, lo:, :]
        out[lo:hi, lo:p] = covariance(d[..., 0].contiguous(), d[..., 1].contiguous())
    upper = torch.triu(out)
    return upper + upper.T - torch.diag(torch.diagonal(out))


def _translation_table(motion: Motion, clip: tuple[int, int, int], covariance: TextureCovariance) -> Tensor:
    """``C`` between two pixels of a translating clip, which depends only on their frame and position
    differences: ``(2T - 1, 2H - 1, 2W - 1)`` indexed by ``(dt, dy, dx) + (T - 1, H - 1, W - 1)``."""
    t, h, w = clip
    dt = torch.arange(-(t - 1), t, dtype=torch.float64)[:, None, None]
    dy = torch.arange(-(h - 1), h, dtype=torch.float64)[None, :, None]
    dx = torch.arange(-(w - 1), w, dtype=torch.float64)[None, None, :]
    # texture position = pixel - v u (u = frame from the middle): differences are dx - vx dt, dy - vy dt
    shape = (2 * t - 1, 2 * h - 1, 2 * w - 1)
    return covariance((dx - motion.vx * dt).expand(shape), (dy - motion.vy * dt).expand(shape))


@dataclass(frozen=True)
class _AxisPairs:
    """One axis of a box of output positions: for taps ``a, b`` and position difference ``D`` (``p - q``),
    ``counts[a, b, D + L - 1]`` pairs of positions whose taps both read the clip (not zero padding), and
    ``lag[a, b, D + L - 1]`` the clip-pixel difference they read, offset to index a :func:`_translation_table`
    axis (clamped where the count is 0)."""

    counts: Tensor
    lag: Tensor

    @classmethod
    def of(cls, box: slice, axis: int, geometry: PatchGeometry) -> _AxisPairs:
        lo, hi, _ = box.indices(geometry.output[axis])
        n, s, k, d = geometry.clip[axis], geometry.stride[axis], geometry.kernel[axis], geometry.dilation[axis]
        p = torch.arange(lo, hi)
        pos = p[:, None] * s + torch.arange(k)[None, :] * d - geometry.pads[2 * axis]
        valid = ((pos >= 0) & (pos < n)).double()
        shifts = torch.arange(-(len(p) - 1), len(p))
        same = (p[None, :, None] - p[None, None, :] == shifts[:, None, None]).double()
        counts = torch.einsum("pa,dpq,qb->abd", valid, same, valid)
        taps = torch.arange(k)
        lag = shifts[None, None, :] * s + (taps[:, None, None] - taps[None, :, None]) * d
        return cls(counts, (lag + n - 1).clamp(0, 2 * n - 2))

    def at_zero(self) -> _AxisPairs:
        """Only ``D = 0``: pairs of taps of the same output position."""
        mid = (self.counts.shape[-1] - 1) // 2
        return _AxisPairs(self.counts[..., mid : mid + 1], self.lag[..., mid : mid + 1])


def _box_sum(table: Tensor, axes: tuple[_AxisPairs, _AxisPairs, _AxisPairs]) -> Tensor:
    """``sum_{p, q} [taps a, b valid] C(x_p,a - x_q,b)`` over a box of positions for a translation (``C`` from
    ``table``), contracted one axis at a time: ``(K, K)``."""
    at, ay, ax = axes
    # x: (Tt, Ty, kx, kx)
    x = torch.einsum("tyabd,abd->tyab", table[:, :, ax.lag], ax.counts)
    # y: gather rows of x by the y lag -> (Tt, ky, ky, Dy, kx, kx)
    y = torch.einsum("tabdij,abd->tabij", x[:, ay.lag], ay.counts)
    z = torch.einsum("abdmnij,abd->abmnij", y[at.lag], at.counts)  # (kt, kt, ky, ky, kx, kx)
    k = z.shape[0] * z.shape[2] * z.shape[4]
    return z.permute(0, 2, 4, 1, 3, 5).reshape(k, k)


def _patch_mean_cov(gamma: Tensor, taps: Tensor) -> Tensor:
    """``mean_p Cov(x(p))``: ``(K, K)`` from the pixel covariance and ``(N, K)`` compact tap indices."""
    n, k = taps.shape
    out = torch.zeros(k, k, dtype=torch.float64)
    rows = max(1, _CHUNK // (k * k))
    for lo in range(0, n, rows):
        part = taps[lo : lo + rows]
        out += gamma[part[:, :, None], part[:, None, :]].sum(dim=0)
    return out / n


def _mean_patch_cov(gamma: Tensor, taps: Tensor) -> Tensor:
    """``Cov(mean_p x(p))``: ``(K, K)``, as ``U Gamma U^T`` with the sparse averaging matrix ``U``."""
    n, k = taps.shape
    rows = torch.arange(k).repeat(n)
    u = torch.sparse_coo_tensor(
        torch.stack((rows, taps.reshape(-1))),
        torch.full((n * k,), 1.0 / n, dtype=torch.float64),
        (k, gamma.shape[0]),
        check_invariants=True,
    ).coalesce()
    ug = torch.sparse.mm(u, gamma)  # (K, P + 1)
    return torch.sparse.mm(u, ug.T.contiguous()).T


def _time_symmetric(geometry: PatchGeometry) -> bool:
    """Whether reversing the clip's frames maps the measured output positions and taps onto themselves (output
    frame ``t -> T' - 1 - t``, tap ``d -> D - 1 - d``), so that a motion and its reverse have the same
    covariances with the taps' time order flipped."""
    t0, t1 = geometry.pads[:2]
    extent = geometry.dilation[0] * (geometry.kernel[0] - 1) + 1
    return t0 == t1 and (geometry.clip[0] + 2 * t0 - extent) % geometry.stride[0] == 0


def _reverse(motion: Motion) -> tuple[float, float, float, float]:
    return (-motion.vx, -motion.vy, -motion.rotation_cw_deg, 1.0 / motion.zoom)


def _flip_time(sigma: Tensor, kernel: tuple[int, int, int]) -> Tensor:
    """``(K, K)`` over taps ``(D, kH, kW)``: the same with both tap indices' time order reversed."""
    return sigma.view(*kernel, *kernel).flip(0, 3).reshape(sigma.shape)


class _Generic:
    """Covariances from the full pixel covariance of the clip (any motion, any padding mode)."""

    def __init__(self, geometry: PatchGeometry, centre_radius: int, border: float) -> None:
        index = geometry.tap_index()
        full, centre = (index[box].reshape(-1, index.shape[-1]) for box in _boxes(geometry, centre_radius, border))
        both = torch.cat((full.reshape(-1), centre.reshape(-1)))
        self.used = torch.unique(both[both >= 0])
        compact = torch.full((index.new_tensor(geometry.clip).prod().item() + 1,), len(self.used))
        compact[self.used] = torch.arange(len(self.used))
        self.full, self.centre = compact[full], compact[centre]  # -1 (zero padding) -> the zero row P

    def __call__(self, positions: Tensor, covariance: TextureCovariance) -> tuple[Tensor, Tensor]:
        gamma = _pixel_covariance(positions[self.used], covariance)
        s_e = _patch_mean_cov(gamma, self.full) - _mean_patch_cov(gamma, self.full)
        return s_e, _patch_mean_cov(gamma, self.centre)


class _Translations:
    """Covariances of translations with zero padding, from the box sums of :func:`_box_sum`."""

    def __init__(self, geometry: PatchGeometry, centre_radius: int, border: float) -> None:
        full, centre = _boxes(geometry, centre_radius, border)
        self.full = tuple(_AxisPairs.of(full[i], i, geometry) for i in range(3))
        self.full_same = tuple(a.at_zero() for a in self.full)
        self.centre_same = tuple(_AxisPairs.of(centre[i], i, geometry).at_zero() for i in range(3))
        size = [len(range(*b.indices(n))) for b, n in zip(full, geometry.output)]
        self.n_full = size[0] * size[1] * size[2]
        self.n_centre = int(torch.tensor([len(range(*b.indices(n))) for b, n in zip(centre, geometry.output)]).prod())

    def __call__(self, table: Tensor) -> tuple[Tensor, Tensor]:
        per_position = _box_sum(table, self.full_same) / self.n_full
        s_e = per_position - _box_sum(table, self.full) / self.n_full**2
        return s_e, _box_sum(table, self.centre_same) / self.n_centre


def patch_covariances(
    geometry: PatchGeometry,
    motions: Sequence[Motion],
    covariance: TextureCovariance,
    centre_radius: int = 2,
    border: float = 0.25,
) -> tuple[Tensor, Tensor]:
    """The matrices ``S_E`` and ``S_W`` of the module notes for every motion: two ``(M, K, K)`` float64 (CPU).

    Translations with zero padding are summed over the box of positions axis by axis (the covariance depends
    only on pixel differences); other motions go through the clip's pixel covariance, and a motion whose
    reverse was already computed reuses it with the taps' time order flipped when the geometry allows."""
    t, h, w = geometry.clip
    positions = source_positions(motions, t, h, w).reshape(len(motions), -1, 2)
    fast = _Translations(geometry, centre_radius, border) if geometry.padding_mode == "zeros" else None
    generic: _Generic | None = None
    done: dict[tuple[float, float, float, float], int] = {}
    s_e: list[Tensor] = []
    s_w: list[Tensor] = []
    for m, motion in enumerate(motions):
        reverse = _reverse(motion)
        twin = next((j for key, j in done.items() if all(abs(a - b) < 1e-12 for a, b in zip(key, reverse))), None)
        if twin is not None and _time_symmetric(geometry):
            pair = (_flip_time(s_e[twin], geometry.kernel), _flip_time(s_w[twin], geometry.kernel))
        elif fast is not None and _is_translation(motion):
            pair = fast(_translation_table(motion, geometry.clip, covariance))
        else:
            generic = generic or _Generic(geometry, centre_radius, border)
            pair = generic(positions[m], covariance)
        done[(motion.vx, motion.vy, motion.rotation_cw_deg, motion.zoom)] = m
        s_e.append(pair[0])
        s_w.append(pair[1])
    return torch.stack(s_e), torch.stack(s_w)


def quadratic_energies(kernel: Tensor, sigma: Tensor) -> Tensor:
    """``sum_c k_{o,c}^T S_m k_{o,c}`` for every motion ``m`` and output channel ``o``.

    Args:
        kernel: ``(O, C, D, kH, kW)`` (any device / dtype; read on ``sigma``'s device in float64).
        sigma: ``(M, K, K)`` with ``K = D kH kW``.

    Returns:
        ``(M, O)`` float64 on ``sigma``'s device.
    """
    k = kernel.detach().to(device=sigma.device, dtype=torch.float64).flatten(2)  # (O, C, K)
    if k.shape[-1] != sigma.shape[-1]:
        raise ValueError(f"kernel has {k.shape[-1]} taps per channel, the covariances {sigma.shape[-1]}")
    gram = torch.bmm(k.transpose(1, 2), k)  # (O, K, K)
    return sigma.flatten(1) @ gram.flatten(1).T


def layer_energies(
    kernel: Tensor,
    geometry: PatchGeometry,
    motions: Sequence[Motion],
    covariance: TextureCovariance,
    centre_radius: int = 2,
    cache: dict[tuple, tuple[Tensor, Tensor]] | None = None,
) -> Tensor:
    """A linear layer's ``(M, O, 2)`` energies (whole map, centre window; float64, CPU) as
    :meth:`EnergyAccumulator.result` gives them in the limit of many views. ``cache`` (keyed by geometry,
    motions and radius) shares the covariances between layers of one shape."""
    key = (geometry, tuple(motions), centre_radius)
    if cache is not None and key in cache:
        s_e, s_w = cache[key]
    else:
        s_e, s_w = patch_covariances(geometry, motions, covariance, centre_radius)
        if cache is not None:
            cache[key] = (s_e, s_w)
    return torch.stack((quadratic_energies(kernel, s_e), quadratic_energies(kernel, s_w)), dim=-1)


def exact_layer_energies(
    layers: dict[str, tuple[nn.Module, tuple[int, int]]],
    motions: Sequence[Motion],
    covariance: TextureCovariance,
    centre_radius: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Layer mode's ``(M, C, 2)`` energies of every named Conv3T shown ``(frames, side)`` clips, in closed
    form: what :class:`~conv3t.verify.energies.EnergyAccumulator` measures on textures with autocorrelation
    ``covariance`` converges to. Covariances are shared by the layers of one geometry. ``progress(stage, done,
    total)`` is called after each layer."""
    cache: dict[tuple, tuple[Tensor, Tensor]] = {}
    out: dict[str, np.ndarray] = {}
    for k, (name, (layer, (frames, side))) in enumerate(layers.items()):
        geometry = PatchGeometry.of_layer(layer, (frames, side, side))
        with torch.no_grad():
            kernel = layer.kernel()
        out[name] = layer_energies(kernel, geometry, motions, covariance, centre_radius, cache).numpy()
        if progress is not None:
            progress("layer mode (closed form)", k + 1, len(layers))
    return out
