"""Motion tuning of channels measured from their responses to stimuli of known motion.

A channel's response to a clip is its *response energy*: the variance of its output over time and space
(after cropping the borders, where zero padding does not move). Energy is used rather than the mean because
the mean of a linear filter's output does not depend on how the input moves; the energy does (it is the
classic motion-energy read-out), and it ignores the channel's bias and the sign of its filter.

From the energies over the probe set of :func:`conv3t.verify.stimuli.standard_stimuli` this module derives,
per channel:

* translation: the preferred velocity, the argmax of the energy over the grid of directions and speeds (a
  filter whose content moves by ``d`` per frame sums its slices coherently exactly when the input moves by
  ``d``), with the direction refined by a parabola through the neighbouring directions; its speed is 0 when
  the static clip beats every moving one. Tuning strength is the opposite-direction index
  ``(R(v*) - R(-v*)) / (R(v*) + R(-v*))`` at the preferred velocity ``v*``;
* rotation: the rotation index ``(R_cw - R_ccw) / (R_cw + R_ccw)`` at the rotation speed where its magnitude
  is largest (positive = prefers clockwise) and the preferred rotation speed;
* zoom: the zoom index ``(R_in - R_out) / (R_in + R_out)`` likewise (positive = prefers zoom in, content
  growing) and the preferred zoom factor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from conv3t.verify.stimuli import Motion

__all__ = ["TUNING_COLUMNS", "response_energy", "tuning_table"]

TUNING_COLUMNS: tuple[str, ...] = (
    "translation_index",
    "measured_direction_deg",
    "measured_speed",
    "rotation_index",
    "measured_rotation_speed",
    "zoom_index",
    "measured_zoom",
    "static_energy",
)


def _crop(size: int, fraction: float) -> slice:
    if size < 4:
        return slice(None)
    cut = int(size * fraction)
    return slice(cut, size - cut)


def response_energy(output: Tensor, border: float = 0.25, spatial_border: float | None = None) -> Tensor:
    """Per-clip, per-channel response energy.

    Args:
        output: ``(N, C, T, H, W)`` a layer's output for ``N`` clips.
        border: fraction of each of ``T, H, W`` cut from both ends before measuring (dimensions shorter than
            4 are kept whole), so the static zero padding at the borders does not bias the measurement.
        spatial_border: a different fraction for ``H, W`` (e.g. ``0.375`` keeps the central quarter, where a
            rotation or zoom about the frame centre is not dominated by its translation component).

    Returns:
        ``(N, C)`` mean square deviation from the per-clip mean over the kept ``T x H x W`` positions (float64).
    """
    if output.dim() != 5:
        raise ValueError(f"output must be (N, C, T, H, W), got shape {tuple(output.shape)}")
    _, _, t, h, w = output.shape
    sb = border if spatial_border is None else spatial_border
    core = output[:, :, _crop(t, border), _crop(h, sb), _crop(w, sb)].double()
    return core.flatten(2).var(dim=2, unbiased=False)


def _index(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b) / np.maximum(a + b, 1e-30)


def _as_numpy(x: np.ndarray | Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, float)


def _translation_tuning(e: np.ndarray, motions: Sequence[Motion], static: np.ndarray) -> dict[str, np.ndarray]:
    """Translation index, preferred direction (deg, refined by a parabola) and speed (px/frame) per channel.

    ``e``: ``(M, C)`` energies over ``motions``; ``static``: ``(C,)`` the static clip's energies.
    """
    channels = e.shape[1]
    res: dict[str, np.ndarray] = {}
    trans = [(i, m) for i, m in enumerate(motions) if m.kind == "translation"]
    if trans:
        speeds = sorted({round(m.speed, 9) for _, m in trans})
        rows = [sorted((m.direction_deg, i) for i, m in trans if round(m.speed, 9) == sp) for sp in speeds]
        if len({len(g) for g in rows}) != 1 or len(rows[0]) % 2:
            raise ValueError("translations must use the same, even number of directions at every speed")
        n_dir = len(rows[0])
        angles = np.array([a for a, _ in rows[0]])
        grid = np.stack([e[[i for _, i in g]] for g in rows])  # (S, D, C)
        cols = np.arange(channels)
        flat = grid.reshape(-1, channels).argmax(axis=0)
        best_s, best_d = np.divmod(flat, n_dir)
        peak = grid[best_s, best_d, cols]
        opposite = grid[best_s, (best_d + n_dir // 2) % n_dir, cols]
        res["translation_index"] = _index(peak, opposite)
        # refine the direction with a parabola through the peak and its two neighbours (circular)
        left = grid[best_s, (best_d - 1) % n_dir, cols]
        right = grid[best_s, (best_d + 1) % n_dir, cols]
        curvature = left - 2 * peak + right
        shift = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
        step = 360.0 / n_dir
        res["measured_direction_deg"] = (angles[best_d] + np.clip(shift, -0.5, 0.5) * step) % 360.0
        res["measured_speed"] = np.where(peak > static, np.array(speeds)[best_s], 0.0)
    else:
        res["translation_index"] = np.zeros(channels)
        res["measured_direction_deg"] = np.full(channels, np.nan)
        res["measured_speed"] = np.full(channels, np.nan)
    return res


def _paired_tuning(ec: np.ndarray, motions: Sequence[Motion], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Index and preferred magnitude per channel for ``kind`` ``"rotation"`` (degrees) or ``"zoom"`` (log factor).

    ``ec``: ``(M, C)`` centre energies over ``motions``. Returns two ``(C,)`` arrays.
    """
    channels = ec.shape[1]
    kinds = [m.kind for m in motions]
    items = [(i, m) for i, m in enumerate(motions) if m.kind == kind]
    amount = {"rotation": lambda m: m.rotation_cw_deg, "zoom": lambda m: math.log(m.zoom)}[kind]
    mags = sorted({round(abs(amount(m)), 9) for _, m in items if amount(m) != 0})
    if not mags:
        return np.zeros(channels), np.full(channels, np.nan)
    pos = np.stack([ec[next(i for i, m in items if math.isclose(amount(m), +a, abs_tol=1e-9))] for a in mags])
    neg = np.stack([ec[next(i for i, m in items if math.isclose(amount(m), -a, abs_tol=1e-9))] for a in mags])
    idx = _index(pos, neg)  # (A, C)
    best = np.abs(idx).argmax(axis=0)
    cols = np.arange(channels)
    index = idx[best, cols]
    preferred = np.where(index[None] >= 0, pos, neg)  # energies in the preferred sense, (A, C)
    profile = np.concatenate([ec[kinds.index("static")][None], preferred], axis=0)
    magnitude = np.array([0.0, *mags])[profile.argmax(axis=0)]
    return index, magnitude


def tuning_table(
    energy: np.ndarray | Tensor,
    motions: Sequence[Motion],
    centre_energy: np.ndarray | Tensor | None = None,
) -> pd.DataFrame:
    """Tuning of every channel from its energies over a probe set.

    Args:
        energy: ``(M, C)`` response energy of ``C`` channels to the ``M`` clips of ``motions``.
        motions: the probe set; needs one ``"static"`` clip, translations on a regular grid of directions at
            each speed, and rotations / zooms in both senses (as :func:`standard_stimuli` makes).
        centre_energy: ``(M, C)`` energies measured near the frame centre only, used for rotation and zoom
            (whose centre is the frame centre); default ``energy``.

    Returns:
        DataFrame with one row per channel and :data:`TUNING_COLUMNS` (directions in degrees, 0 = right,
        90 = down; speeds in pixels per frame; rotation speed in degrees per frame; zoom as a per-frame factor
        >= 1 of the preferred sense). Indices of a channel that does not respond at all are 0.
    """
    e = _as_numpy(energy)
    if e.ndim != 2 or e.shape[0] != len(motions):
        raise ValueError(f"energy must be (M, C) with M = {len(motions)} motions, got shape {e.shape}")
    ec = e if centre_energy is None else _as_numpy(centre_energy)
    if ec.shape != e.shape:
        raise ValueError(f"centre_energy must have the shape of energy {e.shape}, got {ec.shape}")
    kinds = [m.kind for m in motions]
    if "static" not in kinds:
        raise ValueError("the probe set needs a 'static' clip")
    static = e[kinds.index("static")]
    out: dict[str, np.ndarray] = {"static_energy": static}

    # translation: energies on a (speed, direction) grid
    out.update(_translation_tuning(e, motions, static))
    # rotation and zoom: energies in both senses at each magnitude, near the centre
    out["rotation_index"], out["measured_rotation_speed"] = _paired_tuning(ec, motions, "rotation")
    zoom_index, log_zoom = _paired_tuning(ec, motions, "zoom")
    out["zoom_index"], out["measured_zoom"] = zoom_index, np.exp(log_zoom)
    return pd.DataFrame({c: out[c] for c in TUNING_COLUMNS})
