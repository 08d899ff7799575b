"""Agreement of measured and predicted motion, per channel and per layer x motion type.

The rules are :mod:`conv3t.verify.network`'s (module notes there): a channel is strongly tuned when its index
reaches the :class:`~conv3t.verify.network.VerifyConfig` threshold and counted when its parameters also predict
motion; translation agrees within :data:`AGREE_ANGLE_DEG`, rotation and zoom when the senses match.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AGREE_ANGLE_DEG", "CHANCE", "SUMMARY_FIELDS", "judge", "summarize"]

SUMMARY_FIELDS: tuple[str, ...] = (
    "mode",
    "layer",
    "motion",
    "channels",
    "tuned",
    "counted",
    "agree",
    "agreement",
    "chance",
    "median_angle_error_deg",
    "speed_spearman",
    "dominant_counted",
    "dominant_agree",
)


#: A translation-tuned channel agrees when its predicted direction is within this many degrees of the measured one.
AGREE_ANGLE_DEG = 45.0
#: Agreement by chance (parameters unrelated to the measurement): a direction within ±45° of a uniformly random
#: one, 90 / 360; a sense (clockwise or not, zoom in or out), 1 / 2.
CHANCE: dict[str, float] = {"translation": 2 * AGREE_ANGLE_DEG / 360.0, "rotation": 0.5, "zoom": 0.5}


def _angle_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def judge(channels: pd.DataFrame, cfg: Any) -> pd.DataFrame:
    """Add predicted-motion magnitudes and per-motion counted / agree flags for the given mode's columns;
    ``cfg``: the :class:`~conv3t.verify.network.VerifyConfig` (its thresholds)."""
    df = channels.copy()
    layer_mode = df["mode"] == "layer"

    def pick(col: str) -> np.ndarray:
        return np.where(layer_mode, df[f"{col}_layer"], df[col])

    vx, vy = pick("pred_vx"), pick("pred_vy")
    df["pred_speed"] = np.hypot(vx, vy)
    df["pred_direction_deg"] = np.degrees(np.arctan2(vy, vx)) % 360.0
    rot = pick("pred_rotation_cw_deg")
    zoom = pick("pred_zoom_percent")
    df["pred_rotation_cw"] = rot
    df["pred_zoom"] = zoom
    df["angle_error_deg"] = _angle_error(df["measured_direction_deg"].to_numpy(), df["pred_direction_deg"].to_numpy())
    df["translation_tuned"] = df["translation_index"].abs() >= cfg.translation_threshold
    df["translation_counted"] = df["translation_tuned"] & (df["pred_speed"] >= cfg.min_speed)
    df["translation_agree"] = df["translation_counted"] & (df["angle_error_deg"] <= AGREE_ANGLE_DEG)
    df["rotation_tuned"] = df["rotation_index"].abs() >= cfg.rotation_threshold
    df["rotation_counted"] = df["rotation_tuned"] & (np.abs(rot) >= cfg.min_rotation)
    df["rotation_agree"] = df["rotation_counted"] & (np.sign(rot) == np.sign(df["rotation_index"]))
    df["zoom_tuned"] = df["zoom_index"].abs() >= cfg.zoom_threshold
    df["zoom_counted"] = df["zoom_tuned"] & (np.abs(zoom) >= cfg.min_zoom_percent)
    df["zoom_agree"] = df["zoom_counted"] & (np.sign(zoom) == np.sign(df["zoom_index"]))
    return df


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def summarize(channels: pd.DataFrame) -> pd.DataFrame:
    """Per mode x layer x motion type: counts, agreement fraction, chance level and speed rank correlation."""
    rows = []
    measured = {"translation": "measured_speed", "rotation": "measured_rotation_speed", "zoom": "measured_zoom"}
    predicted = {"translation": "pred_speed", "rotation": "pred_rotation_cw", "zoom": "pred_zoom"}
    for (mode, layer), df in channels.groupby(["mode", "layer"], sort=False):
        for motion in ("translation", "rotation", "zoom"):
            counted = df[df[f"{motion}_counted"]]
            agree = int(counted[f"{motion}_agree"].sum())
            pred = np.abs(counted[predicted[motion]].to_numpy(float))
            meas = counted[measured[motion]].to_numpy(float)
            if motion == "zoom":
                meas = np.log(meas)
            rows.append(
                {
                    "mode": mode,
                    "layer": layer,
                    "motion": motion,
                    "channels": len(df),
                    "tuned": int(df[f"{motion}_tuned"].sum()),
                    "counted": len(counted),
                    "agree": agree,
                    "agreement": agree / len(counted) if len(counted) else math.nan,
                    "chance": CHANCE[motion],
                    "median_angle_error_deg": float(counted["angle_error_deg"].median())
                    if motion == "translation" and len(counted)
                    else math.nan,
                    "speed_spearman": _spearman(pred, meas),
                    "dominant_counted": int(counted[f"{motion}_dominant"].sum()) if motion != "translation" else -1,
                    "dominant_agree": int((counted[f"{motion}_dominant"] & counted[f"{motion}_agree"]).sum())
                    if motion != "translation"
                    else -1,
                }
            )
    return pd.DataFrame(rows, columns=list(SUMMARY_FIELDS))
