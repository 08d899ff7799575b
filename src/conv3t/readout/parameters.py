"""The temporal parameters of every ``Conv3T`` layer of a model, as a table with human-readable units.

Public API::

    temporal_parameters(model: nn.Module, input_size: tuple[int, int, int] | None = (32, 256, 256),
                        in_channels: int | None = None) -> pandas.DataFrame
    canonical_scale_rotation(scale: ndarray, rotation: ndarray) -> tuple[ndarray, ndarray]
    PARAMETER_COLUMNS, DERIVED_COLUMNS: tuple[str, ...]

Conventions (``docs/conventions.md`` is the long version). The layer samples slice ``t`` at
``q = s R(r) (p + t)`` to build slice ``t+1`` (``affine_grid`` coordinates, align_corners=True, x right, y down,
one unit = ``(k-1)/2`` kernel pixels). Solving for ``p`` gives where the content at ``q`` lands::

    p = (1/s) R(-r) q - t

so per step the content is scaled by ``1/s`` and turned by ``-r`` about the kernel centre, then shifted by ``-t``.
The content at the kernel centre (``q = 0``) moves by exactly ``-t`` whatever ``s`` and ``r`` are; that centre
displacement is what the ``dx``/``dy`` columns report. Because ``conv3d`` correlates kernel slice ``t`` with input
frame ``t + offset``, this content motion is the motion the channel prefers in the input.

Negative scales (training can push ``s`` through 0): ``R(pi) = -I``, so ``s R(r) = |s| R(r + pi)`` and the map
``s R(r) (p + t)`` is exactly the one with scale ``|s|``, rotation ``r + pi`` and the same ``t``. Every derived
column reads this *canonical form* ``(|s|, r')`` with ``r' = r + pi`` if ``s < 0`` else ``r``, wrapped to
``(-pi, pi]`` (a rotation is only defined modulo a full turn): a negative scale is a zoom by ``1/|s|`` plus a
half turn. The raw columns keep the stored values; ``|s|`` below ``1e-12`` is read as ``1e-12`` so that nothing
divides by zero.

Columns of :func:`temporal_parameters` (one row per Conv3T layer x output channel x step):

* ``layer`` (qualified module name), ``channel``, ``step`` (0-based; step ``t`` maps slice ``t`` to ``t+1``)
* raw: ``scale``, ``rotation`` (radians, positive = content turns counter-clockwise), ``translation_x``,
  ``translation_y`` (``affine_grid`` units)
* ``kernel_d``, ``kernel_h``, ``kernel_w``: the layer's kernel size ``D, kH, kW``
* ``rotation_deg`` = ``degrees(r')``; ``rotation_cw_deg`` = ``-degrees(r')`` (content rotation, clockwise
  positive; ``r'`` is the canonical rotation, so both lie in ``[-180, 180]``)
* ``zoom_percent`` = ``(1/|s| - 1) * 100`` (content size change per step; positive = grows = zooms in)
* ``dx_kernel_px`` = ``-t_x (kW-1)/2``, ``dy_kernel_px`` = ``-t_y (kH-1)/2``: content motion of the kernel centre
  per step in kernel pixels (x right, y down)
* ``image_stride_x``, ``image_stride_y``: input-image pixels per kernel pixel (the cumulative spatial stride of
  the layer's input times the layer's dilation; NaN if ``input_size`` is None)
* ``frames_per_step``: input frames between two kernel slices (cumulative temporal stride times temporal
  dilation; NaN if ``input_size`` is None)
* ``dx_image_px``, ``dy_image_px``: the same motion in input-image pixels
* trajectory after this step, relative to slice 0, of the content that starts at the kernel centre, from the
  exact composition of the steps: ``traj_x_kernel_px``, ``traj_y_kernel_px``, ``traj_x_image_px``,
  ``traj_y_image_px``; plus ``cum_rotation_cw_deg`` (sum of the steps' ``rotation_cw_deg``) and ``cum_zoom``
  (product of ``1/|s|``)
* the paper's convention (section 3.4): ``paper_rotation`` = ``-r`` in radians (clockwise positive),
  ``paper_px`` = ``t_x * kW``, ``paper_py`` = ``t_y * kH``. We read the paper's ``W``, ``H`` as the width and
  height of the transformed "image", which in eq. 3-5 is the kernel slice. These keep the raw sign of ``t``
  (the sampling offset), i.e. the opposite sign of the content motion, and over-count by ``k / ((k-1)/2)``
  compared with the exact pixel motion; they exist only to reproduce the paper's figures (and so read the raw
  ``r``, not the canonical one).
* how much of the filter stays inside the kernel, from the generated kernel ``layer.kernel()``:
  ``filter_norm`` (Frobenius norm of the channel's 2D filter ``K_1`` over ``in/groups x kH x kW``),
  ``filter_norm_ratio`` (that norm over the median of the layer's channels, or over their mean if more than
  half of them are zero; 0 for a zero filter), ``slice_energy`` (energy, i.e. sum of squares, of slice
  ``t+1`` over that of slice 0; below 1 when content leaves the kernel through the zero padding or is
  blurred by sub-pixel sampling, above 1 when zooming in spreads it over more pixels; 0 when ``K_1`` is zero),
  ``content_inside`` (the share of the filter's content still inside the kernel after this step: the same
  warps applied to ``sum_in |K_1|``, whose sum bilinear sampling keeps except for what crosses the border,
  slice ``t+1``'s sum over slice 0's times ``prod_k s_k^2`` to undo the zoom's change of area; about 1 while
  nothing has left, towards 0 as the content leaves through the zero padding, independent of blur; the area
  correction is exact for smooth content and approximate where a strong zoom out skips fine detail)
* ``step_in_clip``: both slices of the step (``t`` and ``t+1``) multiply real frames of the measured input
  (``input_size``); False when one of them only ever meets the temporal zero padding (e.g. every step of a
  3-deep kernel whose input has 1 frame), so the step's motion cannot show at that clip length. True when
  ``input_size`` is None or the padding mode is not zeros.

Non-square kernels: ``affine_grid`` units differ along x and y, so ``r`` is a rotation in normalised
coordinates; the per-axis pixel conversion above is still exact for the centre displacement and the trajectory.

Strides: :mod:`conv3t.readout.geometry` measures them (:func:`~conv3t.readout.geometry.layer_geometry`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from conv3t.nn import Conv3T, conv3t_layers
from conv3t.nn.functional import generate_kernel
from conv3t.readout.geometry import layer_geometry, slices_meeting_frames

__all__ = [
    "DERIVED_COLUMNS",
    "PARAMETER_COLUMNS",
    "canonical_scale_rotation",
    "temporal_parameters",
]

PARAMETER_COLUMNS: tuple[str, ...] = (
    "layer",
    "channel",
    "step",
    "scale",
    "rotation",
    "translation_x",
    "translation_y",
)
DERIVED_COLUMNS: tuple[str, ...] = (
    "kernel_d",
    "kernel_h",
    "kernel_w",
    "rotation_deg",
    "rotation_cw_deg",
    "zoom_percent",
    "dx_kernel_px",
    "dy_kernel_px",
    "image_stride_x",
    "image_stride_y",
    "frames_per_step",
    "dx_image_px",
    "dy_image_px",
    "traj_x_kernel_px",
    "traj_y_kernel_px",
    "traj_x_image_px",
    "traj_y_image_px",
    "cum_rotation_cw_deg",
    "cum_zoom",
    "paper_rotation",
    "paper_px",
    "paper_py",
    "filter_norm",
    "filter_norm_ratio",
    "slice_energy",
    "content_inside",
    "step_in_clip",
)

# |s| below this is read as this, so that 1/|s| stays finite
_MIN_ABS_SCALE = 1e-12


def canonical_scale_rotation(scale: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The canonical form of a step's similarity: positive scale, rotation in ``(-pi, pi]``.

    ``s R(r) = |s| R(r + pi)`` for ``s < 0`` because ``R(pi) = -I``; the translation term of eq. 3 is unchanged
    (the map is ``s R(r) (p + t)``), so the canonical pair describes exactly the same kernel.

    Args:
        scale, rotation: arrays of one shape (raw parameters; rotation in radians).

    Returns:
        ``(abs_scale, rotation')`` as float64 arrays of that shape: ``abs_scale = max(|s|, 1e-12)`` and
        ``rotation' = r + pi`` where ``s < 0`` (else ``r``), wrapped to ``(-pi, pi]``.
    """
    scale = np.asarray(scale, dtype=np.float64)
    rotation = np.asarray(rotation, dtype=np.float64)
    turned = np.where(scale < 0, rotation + np.pi, rotation)
    wrapped = np.pi - np.mod(np.pi - turned, 2.0 * np.pi)  # (-pi, pi]; +pi stays +pi
    return np.maximum(np.abs(scale), _MIN_ABS_SCALE), wrapped


def _kernel_measures(layer: Conv3T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``filter_norm (C,)``, ``slice_energy (C, D-1)`` and ``content_inside (C, D-1)`` of a layer."""
    with torch.no_grad():
        kernel = layer.kernel().detach().to(torch.float64)
        params = [
            p.detach().to(torch.float64)
            for p in (layer.scale, layer.rotation, layer.translation_x, layer.translation_y)
        ]
        # bilinear warps of a non-negative map keep its sum except what leaves through the border, and scale it
        # by 1/s^2 (the content's area); blur, which lowers the energy of fine filters, does not change it
        mass_map = layer.weight.detach().to(torch.float64).abs().sum(dim=1, keepdim=True)
        mass = generate_kernel(mass_map, *params).sum(dim=(1, 3, 4)).cpu().numpy()  # (C, D)
    energy = kernel.pow(2).sum(dim=(1, 3, 4)).cpu().numpy()  # (C, D)
    area = np.cumprod(params[0].cpu().numpy() ** 2, axis=1)  # undoes the zoom's change of the content's area
    ratios = []
    for values, factor in ((energy, 1.0), (mass, area)):
        first = values[:, :1]
        ratio = np.divide(values[:, 1:], first, out=np.zeros_like(values[:, 1:]), where=first > 0)
        ratios.append(ratio * factor)
    return np.sqrt(energy[:, 0]), ratios[0], ratios[1]


def _trajectory(scale: np.ndarray, rotation: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """Positions (normalised units) of the content that starts at the kernel centre, after each step.

    Args: ``(C, S)`` arrays (canonical scale and rotation, or raw: the map is the same). Returns ``(C, S, 2)``:
    ``q_{k+1} = (1/s_k) R(-r_k) q_k - t_k`` with ``q_0 = 0``.
    """
    channels, steps = scale.shape
    out = np.zeros((channels, steps, 2))
    qx = np.zeros(channels)
    qy = np.zeros(channels)
    for k in range(steps):
        c, s = np.cos(rotation[:, k]), np.sin(rotation[:, k])
        inv = 1.0 / scale[:, k]
        # R(-r) = [[c, s], [-s, c]]
        qx, qy = inv * (c * qx + s * qy) - tx[:, k], inv * (-s * qx + c * qy) - ty[:, k]
        out[:, k, 0] = qx
        out[:, k, 1] = qy
    return out


def temporal_parameters(
    model: nn.Module,
    input_size: tuple[int, int, int] | None = (32, 256, 256),
    in_channels: int | None = None,
) -> pd.DataFrame:
    """The temporal parameters of every Conv3T layer, one row per layer x output channel x step.

    Args:
        model: a module containing ``Conv3T`` layers (or a ``Conv3T`` itself, listed as layer ``""``).
        input_size: ``(T, H, W)`` of the dummy clip that measures each layer's cumulative stride (see
            :func:`layer_geometry`); None leaves the image-pixel and frame columns NaN.
        in_channels: channels of the dummy clip; default: inferred (see :func:`layer_geometry`).

    Returns:
        DataFrame with :data:`PARAMETER_COLUMNS` followed by :data:`DERIVED_COLUMNS` (meanings and units in the
        module docstring), rows ordered by layer (registration order), channel, step. Layers with ``D = 1``
        contribute no rows. Raw values are float64 copies of the parameters; derived values read the canonical
        form (positive scale, see :func:`canonical_scale_rotation`). Generates each layer's kernel once.
    """
    geometry = layer_geometry(model, input_size, in_channels).set_index("layer")
    frames = [_layer_rows(name, m, geometry.loc[name]) for name, m in conv3t_layers(model, min_depth=2)]
    columns = list(PARAMETER_COLUMNS + DERIVED_COLUMNS)
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        return empty.astype({"layer": "object", "channel": "int64", "step": "int64"})
    return pd.concat(frames, ignore_index=True)[columns]


def _layer_rows(name: str, m: Conv3T, geo: pd.Series) -> pd.DataFrame:
    """The rows of one layer (``D >= 2``): ``C * (D-1)`` rows, channel-major; ``geo`` is its geometry row."""
    scale, rotation, tx, ty = (
        p.detach().to("cpu", torch.float64).numpy() for p in (m.scale, m.rotation, m.translation_x, m.translation_y)
    )
    channels, steps = scale.shape
    d, kh, kw = m.kernel_size
    half_x, half_y = (kw - 1) / 2, (kh - 1) / 2
    stride_x, stride_y = float(geo["image_stride_x"]), float(geo["image_stride_y"])
    abs_scale, canon_rotation = canonical_scale_rotation(scale, rotation)
    traj = _trajectory(abs_scale, canon_rotation, tx, ty)
    norm, slice_energy, content_inside = _kernel_measures(m)
    used = slices_meeting_frames(m, float(geo["input_t"]))
    reference = float(np.median(norm)) or float(np.mean(norm))  # mean if most channels are zero
    norm_ratio = norm / reference if reference > 0 else np.zeros_like(norm)
    data: dict[str, object] = {
        "layer": name,
        "channel": np.repeat(np.arange(channels), steps),
        "step": np.tile(np.arange(steps), channels),
        "scale": scale.reshape(-1),
        "rotation": rotation.reshape(-1),
        "translation_x": tx.reshape(-1),
        "translation_y": ty.reshape(-1),
        "kernel_d": d,
        "kernel_h": kh,
        "kernel_w": kw,
    }
    r = canon_rotation.reshape(-1)
    dx = -tx.reshape(-1) * half_x + 0.0  # + 0.0 turns -0.0 into 0.0 for display
    dy = -ty.reshape(-1) * half_y + 0.0
    traj_x = traj[..., 0].reshape(-1) * half_x
    traj_y = traj[..., 1].reshape(-1) * half_y
    data.update(
        rotation_deg=np.degrees(r),
        rotation_cw_deg=-np.degrees(r) + 0.0,
        zoom_percent=(1.0 / abs_scale.reshape(-1) - 1.0) * 100.0,
        dx_kernel_px=dx,
        dy_kernel_px=dy,
        image_stride_x=stride_x,
        image_stride_y=stride_y,
        frames_per_step=float(geo["frames_per_step"]),
        dx_image_px=dx * stride_x,
        dy_image_px=dy * stride_y,
        traj_x_kernel_px=traj_x,
        traj_y_kernel_px=traj_y,
        traj_x_image_px=traj_x * stride_x,
        traj_y_image_px=traj_y * stride_y,
        cum_rotation_cw_deg=np.cumsum(-np.degrees(canon_rotation), axis=1).reshape(-1) + 0.0,
        cum_zoom=np.cumprod(1.0 / abs_scale, axis=1).reshape(-1),
        paper_rotation=-rotation.reshape(-1) + 0.0,
        paper_px=tx.reshape(-1) * kw,
        paper_py=ty.reshape(-1) * kh,
        filter_norm=np.repeat(norm, steps),
        filter_norm_ratio=np.repeat(norm_ratio, steps),
        slice_energy=slice_energy.reshape(-1),
        content_inside=content_inside.reshape(-1),
        step_in_clip=np.tile(used[:-1] & used[1:], channels),
    )
    return pd.DataFrame(data)
