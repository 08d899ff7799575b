"""What motion each channel's temporal parameters predict, in the network's input and in the layer's own input.

Read from :func:`conv3t.readout.temporal_parameters` with the explanations' content-motion convention; the
verification (:mod:`conv3t.verify.network`) compares these predictions with measured preferences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from conv3t.nn import conv3t_layers
from conv3t.readout import temporal_parameters

__all__ = ["predicted_motion"]


def predicted_motion(model: nn.Module, input_size: tuple[int, int, int], in_channels: int = 3) -> pd.DataFrame:
    """Per-frame content motion that each channel's parameters predict, averaged over its steps.

    Zoom is averaged as a log factor; a step with a negative scale (possible after training: the sampling grid
    is point-reflected) counts as zoom ``1/|s|`` and an extra 180 degree turn.

    Returns one row per layer x channel with, in the network's input space (``image``): ``pred_vx``,
    ``pred_vy`` (pixels per frame), ``pred_rotation_cw_deg`` (degrees per frame, clockwise positive),
    ``pred_zoom_percent`` (content size change per frame, %); and the same in the layer's own input space
    with the suffix ``_layer`` (layer-input pixels per layer-input frame); ``rotation_dominant`` /
    ``zoom_dominant``: the rotation / zoom moves the kernel's edge (``(k-1)/2`` pixels from the centre) further
    per step than the translation moves its centre (mean over steps). Read from
    :func:`conv3t.readout.temporal_parameters`.
    """
    table = temporal_parameters(model, input_size=input_size, in_channels=in_channels)
    modules = dict(conv3t_layers(model, min_depth=2))
    table = table[table["layer"].isin(list(modules))].copy()
    fps = table["frames_per_step"].to_numpy()
    scale = table["scale"].to_numpy(float)
    # a negative scale is a point reflection: magnitude |s| and an extra half turn (temporal_parameters'
    # rotation_cw_deg already includes that half turn: it reads the canonical form)
    log_zoom = -np.log(np.maximum(np.abs(scale), 1e-12))
    dil = np.array([modules[name].dilation for name in table["layer"]], dtype=float).reshape(-1, 3)
    table["_vx"] = table["dx_image_px"] / fps
    table["_vy"] = table["dy_image_px"] / fps
    table["_rot"] = table["rotation_cw_deg"] / fps
    table["_lz"] = log_zoom / fps
    table["_vx_l"] = table["dx_kernel_px"] * dil[:, 2] / dil[:, 0]
    table["_vy_l"] = table["dy_kernel_px"] * dil[:, 1] / dil[:, 0]
    table["_rot_l"] = table["rotation_cw_deg"] / dil[:, 0]
    table["_lz_l"] = log_zoom / dil[:, 0]
    # displacement per step at the kernel's edge (kernel pixels) caused by each motion component
    half = 0.5 * (np.minimum(table["kernel_h"], table["kernel_w"]).to_numpy(float) - 1)
    table["_edge_t"] = np.hypot(table["dx_kernel_px"], table["dy_kernel_px"])
    table["_edge_r"] = np.abs(np.radians(table["rotation_cw_deg"])) * half
    table["_edge_z"] = np.abs(np.expm1(log_zoom)) * half
    columns = ["_vx", "_vy", "_rot", "_lz", "_vx_l", "_vy_l", "_rot_l", "_lz_l", "_edge_t", "_edge_r", "_edge_z"]
    # In the network's input (image mode) a step whose two slices do not both meet real frames has no effect
    # on the output: it predicts nothing, and a layer without such a step predicts no image motion (it is not
    # counted). Layer-mode clips are D * dilation + 6 frames long, where every step acts.
    image_columns = ["_vx", "_vy", "_rot", "_lz"]
    table.loc[~table["step_in_clip"].to_numpy(bool), image_columns] = np.nan
    m = table.groupby(["layer", "channel"], sort=False)[columns].mean().fillna(0.0).reset_index()
    return pd.DataFrame(
        {
            "layer": m["layer"],
            "channel": m["channel"].astype(int),
            "pred_vx": m["_vx"],
            "pred_vy": m["_vy"],
            "pred_rotation_cw_deg": m["_rot"],
            "pred_zoom_percent": np.expm1(m["_lz"]) * 100.0,
            "pred_vx_layer": m["_vx_l"],
            "pred_vy_layer": m["_vy_l"],
            "pred_rotation_cw_deg_layer": m["_rot_l"],
            "pred_zoom_percent_layer": np.expm1(m["_lz_l"]) * 100.0,
            "rotation_dominant": m["_edge_r"] > m["_edge_t"],
            "zoom_dominant": m["_edge_z"] > m["_edge_t"],
        }
    )
