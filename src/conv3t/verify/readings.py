"""Per-channel measured motion readings and per-layer verdicts, from a :class:`VerificationResult`.

:func:`conv3t.verify.verify_model` drives every Conv3T channel with stimuli of known motion and compares the
measured preference with the parameters' reading, per motion type. This module condenses that, per channel,
into what a person reads on a channel card and in ``ranking.csv``, and, per layer, into one verdict: can the
layer's parameters be read as image motion?

Per channel (:func:`channel_readings`, image mode: stimuli move in the network's input):

* the *primary* motion type is the one whose tuning index is largest relative to its threshold
  (:class:`~conv3t.verify.network.VerifyConfig`: ``translation_threshold`` for the opposite-direction index,
  ``rotation_threshold`` / ``zoom_threshold`` for the cw/ccw and in/out indices); the channel is *tuned* when
  that ratio reaches 1, and ``tuning_strength`` is that type's ``|index|`` (0..1);
* ``measured_direction_deg`` (0 = right, 90 = down) and ``measured_speed_px`` (image px per frame) when the
  translation index reaches its threshold (speed 0 = prefers the static clip), else empty;
  ``measured_rotation`` ``cw`` / ``ccw`` and ``measured_zoom`` ``in`` / ``out`` when those indices reach
  theirs, else empty;
* ``parameters_agree``: for a tuned channel, whether its parameters' reading (carried to image space: the
  layer's cumulative stride and frames per step) predicts its primary motion: at least the verification's
  minimum motion of that type and, for translation, a direction within 45 degrees, for rotation and zoom the
  same sense; empty (None) for an untuned channel.

Per layer (:func:`layer_verdicts`), for each motion type: with fewer than :data:`MIN_COUNTED` counted channels
(tuned and predicted to move) there are *too few* to tell; an agreement below ``(1 + chance) / 2`` (62.5 % for
translation, 75 % for rotation and zoom) *disagrees*; a higher one *agrees* when a one-sided binomial test
against the chance level gives ``p < ALPHA`` (1 %), and is again *too few* when it does not. These rules were
fixed before looking at any trained model and are not tuned to pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from conv3t.proportions import binomial_tail, wilson_interval
from conv3t.verify.network import CHANCE, VerificationResult, VerifyConfig

__all__ = [
    "ALPHA",
    "MIN_COUNTED",
    "MOTION_TYPES",
    "READING_COLUMNS",
    "binomial_tail",
    "channel_readings",
    "layer_verdicts",
    "wilson_interval",
]

MOTION_TYPES: tuple[str, ...] = ("translation", "rotation", "zoom")
#: The columns ``ranking.csv`` gains (docs/conventions.md defines them).
READING_COLUMNS: tuple[str, ...] = (
    "measured_direction_deg",
    "measured_speed_px",
    "measured_rotation",
    "measured_zoom",
    "tuning_strength",
    "parameters_agree",
)
#: Fewest counted channels of a motion type for a layer verdict on it.
MIN_COUNTED = 5
#: Significance level of the one-sided binomial test of a layer's agreement against chance.
ALPHA = 0.01

_THRESHOLD_KEYS = {"translation": "translation_threshold", "rotation": "rotation_threshold", "zoom": "zoom_threshold"}


def _thresholds(config: dict) -> dict[str, float]:
    """The tuning thresholds a verification ran with; :class:`VerifyConfig`'s defaults for a result that does not
    record them (stores written before they were configurable)."""
    defaults = VerifyConfig()
    return {m: float(config.get(key, getattr(defaults, key))) for m, key in _THRESHOLD_KEYS.items()}


def channel_readings(result: VerificationResult, mode: str = "image") -> pd.DataFrame:
    """One row per layer x channel: the measured image-space preference and whether the parameters agree.

    Args:
        result: from :func:`conv3t.verify.verify_model` with ``mode`` among its modes.
        mode: ``"image"`` (stimuli in the network's input; what the cards show) or ``"layer"``.

    Returns:
        Columns ``layer``, ``channel``, :data:`READING_COLUMNS`, then ``tuned`` (bool), ``measured_motion``
        (the primary type, ``""`` when untuned), ``rotation_speed_deg`` / ``zoom_factor`` (preferred magnitude
        per frame of a tuned rotation / zoom, else NaN), ``pred_direction_deg``, ``pred_speed_px``,
        ``pred_rotation_cw_deg``, ``pred_zoom_percent`` (the parameters' reading in image space, per frame),
        ``undecided`` / ``undecided_readings`` (a reading within its sampling error of what would change it,
        :mod:`conv3t.verify.sequential`; False / ``""`` for results that do not record it).
        ``parameters_agree`` is an object column of True / False / None.
    """
    df = result.channels[result.channels["mode"] == mode]
    if df.empty:
        raise ValueError(
            f"the verification has no {mode!r} mode rows (modes measured: {sorted(set(result.channels['mode']))})"
        )
    thr = _thresholds(result.config)
    index = {m: df[f"{m}_index"].to_numpy(float) for m in MOTION_TYPES}
    ratio = np.stack([np.abs(index[m]) / thr[m] for m in MOTION_TYPES])  # (3, C)
    ratio = np.nan_to_num(ratio, nan=0.0)
    primary = ratio.argmax(axis=0)
    cols = np.arange(len(df))
    strength = np.clip(np.abs(np.stack([index[m] for m in MOTION_TYPES]))[primary, cols], 0.0, 1.0)
    tuned = ratio[primary, cols] >= 1.0
    t_tuned = np.abs(index["translation"]) >= thr["translation"]
    r_tuned = np.abs(index["rotation"]) >= thr["rotation"]
    z_tuned = np.abs(index["zoom"]) >= thr["zoom"]
    speed = df["measured_speed"].to_numpy(float)
    direction = np.where(t_tuned & (speed > 0), df["measured_direction_deg"].to_numpy(float), np.nan)
    agree_by_type = np.stack([df[f"{m}_agree"].to_numpy(bool) for m in MOTION_TYPES])
    agree = agree_by_type[primary, cols]
    return pd.DataFrame(
        {
            "layer": df["layer"].to_numpy(),
            "channel": df["channel"].to_numpy(int),
            "measured_direction_deg": direction,
            "measured_speed_px": np.where(t_tuned, speed, np.nan),
            "measured_rotation": np.where(r_tuned, np.where(index["rotation"] > 0, "cw", "ccw"), ""),
            "measured_zoom": np.where(z_tuned, np.where(index["zoom"] > 0, "in", "out"), ""),
            "tuning_strength": strength,
            "parameters_agree": pd.Series([bool(a) if t else None for a, t in zip(agree, tuned)], dtype=object),
            "tuned": tuned,
            "measured_motion": np.where(tuned, np.array(MOTION_TYPES)[primary], ""),
            "rotation_speed_deg": np.where(r_tuned, df["measured_rotation_speed"].to_numpy(float), np.nan),
            "zoom_factor": np.where(z_tuned, df["measured_zoom"].to_numpy(float), np.nan),
            "pred_direction_deg": df["pred_direction_deg"].to_numpy(float),
            "pred_speed_px": df["pred_speed"].to_numpy(float),
            "pred_rotation_cw_deg": df["pred_rotation_cw"].to_numpy(float),
            "pred_zoom_percent": df["pred_zoom"].to_numpy(float),
            # stores written before the readings carried their sampling error have no flags: nothing flagged
            "undecided": df["undecided"].eq(True).to_numpy() if "undecided" in df else np.zeros(len(df), bool),
            "undecided_readings": df["undecided_readings"].fillna("").astype(str).to_numpy()
            if "undecided_readings" in df
            else np.full(len(df), ""),
        }
    )


def _motion_verdict(agree: int, counted: int, chance: float) -> str:
    """``"agrees"``, ``"disagrees"`` or ``"too few"`` for one motion type of one layer (module rules)."""
    if counted < MIN_COUNTED:
        return "too few"
    if agree / counted < (1 + chance) / 2:
        return "disagrees"
    # a high rate on few channels can still be chance: then there is not enough evidence either way
    return "agrees" if binomial_tail(agree, counted, chance) < ALPHA else "too few"


def layer_verdicts(result: VerificationResult, modes: Sequence[str] = ("image", "layer")) -> pd.DataFrame:
    """One row per mode x layer: counts per motion type and whether the layer's parameters read as motion.

    Returns:
        Columns ``mode``, ``layer``, ``channels``; per motion type ``{m}_agree``, ``{m}_counted``,
        ``{m}_verdict`` (``"agrees"`` / ``"disagrees"`` / ``"too few"``, module rules), and how many channels
        the measurement leaves undecided (:func:`undecided_counts`): ``{m}_undecided_in`` of the counted ones,
        ``{m}_undecided_out`` of the others; ``verdict``:
        ``"readable"`` (every type with a verdict agrees), ``"not readable"`` (none agrees), ``"partly"``
        (some do), ``"too few tuned channels"`` (no type has :data:`MIN_COUNTED` counted channels); and
        ``sentence``, that verdict in words (for ``image`` mode: "as image motion", for ``layer`` mode: "as
        motion of its own input").
    """
    rows = []
    summary = result.summary
    for (mode, layer), df in summary[summary["mode"].isin(list(modes))].groupby(["mode", "layer"], sort=False):
        row: dict[str, object] = {"mode": mode, "layer": layer, "channels": int(df["channels"].iloc[0])}
        by = df.set_index("motion")
        verdicts = {}
        row |= undecided_counts(result.channels, str(mode), str(layer))
        for m in MOTION_TYPES:
            agree, counted = int(by.loc[m, "agree"]), int(by.loc[m, "counted"])
            row[f"{m}_agree"], row[f"{m}_counted"] = agree, counted
            verdicts[m] = row[f"{m}_verdict"] = _motion_verdict(agree, counted, CHANCE[m])
        judged = [m for m in MOTION_TYPES if verdicts[m] != "too few"]
        good = [m for m in judged if verdicts[m] == "agrees"]
        if not judged:
            row["verdict"] = "too few tuned channels"
        elif len(good) == len(judged):
            row["verdict"] = "readable"
        elif good:
            row["verdict"] = "partly"
        else:
            row["verdict"] = "not readable"
        row["sentence"] = _sentence(str(layer), str(mode), row, verdicts)
        rows.append(row)
    return pd.DataFrame(rows)


#: The readings (:mod:`conv3t.verify.sequential`'s ``undecided_readings``) that decide whether a channel is counted
#: for a motion type and whether it agrees: its tuning index against the threshold, and for translation the
#: direction's agreement with the parameters' (rotation and zoom agree by the index's sign, decided with it).
_DECIDING = {"translation": ("translation", "agreement"), "rotation": ("rotation",), "zoom": ("zoom",)}


def undecided_counts(channels: pd.DataFrame, mode: str, layer: str) -> dict[str, int]:
    """Per motion type, the channels of ``mode`` x ``layer`` whose counting or agreement the measurement does not
    decide (within their sampling error over the texture views, :mod:`conv3t.verify.sequential`):
    ``{m}_undecided_in`` among the counted channels (the count and the agreement could lose them),
    ``{m}_undecided_out`` among the others (it could gain them). Zero without the flags (layer mode, whose
    readings are exact; verifications stored before the flags)."""
    out = {f"{m}_undecided_{w}": 0 for m in MOTION_TYPES for w in ("in", "out")}
    if channels is None or "undecided_readings" not in channels or not len(channels):
        return out
    rows = channels[(channels["mode"] == mode) & (channels["layer"] == layer)]
    names = rows["undecided_readings"].fillna("").astype(str).str.split("; ")
    for m in MOTION_TYPES:
        open_ = names.map(lambda got, m=m: any(n in got for n in _DECIDING[m])).to_numpy(bool)
        counted = rows[f"{m}_counted"].eq(True).to_numpy() if f"{m}_counted" in rows else np.zeros(len(rows), bool)
        out[f"{m}_undecided_in"] = int((open_ & counted).sum())
        out[f"{m}_undecided_out"] = int((open_ & ~counted).sum())
    return out


def _counts(row: dict[str, object], motions: Sequence[str]) -> str:
    return "; ".join(f"{m} {row[f'{m}_agree']}/{row[f'{m}_counted']} agree, chance {CHANCE[m]:.0%}" for m in motions)


def _sentence(layer: str, mode: str, row: dict[str, object], verdicts: dict[str, str]) -> str:
    space = "image motion" if mode == "image" else "motion of its own input"
    judged = [m for m in MOTION_TYPES if verdicts[m] != "too few"]
    few = [m for m in MOTION_TYPES if verdicts[m] == "too few" and int(row[f"{m}_counted"]) > 0]
    aside = f"; too few to judge: {_counts(row, few)}" if few else ""
    verdict = row["verdict"]
    if verdict == "too few tuned channels":
        counted = f" ({_counts(row, few)})" if few else ""
        return f"{layer}: too few tuned channels to tell whether its parameters can be read as {space}{counted}."
    if verdict == "readable":
        return f"{layer}: its parameters can be read as {space} ({_counts(row, judged)}{aside})."
    if verdict == "not readable":
        return (
            f"{layer}: its parameters cannot be read as {space} ({_counts(row, judged)}{aside}); trust the "
            "measured readings, not the parameters."
        )
    good = [m for m in judged if verdicts[m] == "agrees"]
    bad = [m for m in judged if verdicts[m] != "agrees"]
    return (
        f"{layer}: its parameters can be read as {space} for {' and '.join(good)} ({_counts(row, good)}) but not "
        f"for {' and '.join(bad)} ({_counts(row, bad)}{aside})."
    )
