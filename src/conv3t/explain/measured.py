"""Words for what a channel measurably prefers, whether its parameters agree, and why a clip got its class.

The rows are those of :func:`conv3t.verify.readings.channel_readings` (``ranking.csv`` carries the same
columns): image-space measurements from stimuli of known motion, directions in degrees with 0 = right and
90 = down, speeds in image pixels per frame.

Public API::

    reading_text(row) -> str            # "prefers motion to the right at 1 px/frame" / "untuned"
    measured_sentence(row) -> str       # the card's headline
    agreement_sentence(row, layer_readable=None) -> str
    prediction_sentence(record, readings=None) -> str
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["agreement_sentence", "direction_word", "measured_sentence", "prediction_sentence", "reading_text"]

_DIRECTIONS = ("to the right", "down-right", "down", "down-left", "to the left", "up-left", "up", "up-right")


def direction_word(angle_deg: float) -> str:
    """``0 -> "to the right"``, ``90 -> "down"`` (y down), ... in 45-degree sectors."""
    return _DIRECTIONS[round(float(angle_deg) / 45.0) % 8]


def _get(row: Mapping[str, Any] | pd.Series, key: str, default: Any = None) -> Any:
    value = row.get(key, default) if hasattr(row, "get") else default
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _parts(row: Mapping[str, Any] | pd.Series) -> dict[str, str]:
    """Phrases per tuned motion type."""
    parts: dict[str, str] = {}
    direction, speed = _get(row, "measured_direction_deg"), _get(row, "measured_speed_px")
    if speed is not None:
        if float(speed) == 0 or direction is None:
            parts["translation"] = "the static clip to every probed translation"
        else:
            parts["translation"] = (
                f"motion {direction_word(direction)} ({float(direction):.0f}°) at {float(speed):g} px/frame"
            )
    rotation = _get(row, "measured_rotation", "")
    if rotation:
        parts["rotation"] = "clockwise rotation" if rotation == "cw" else "counter-clockwise rotation"
    zoom = _get(row, "measured_zoom", "")
    if zoom:
        parts["zoom"] = "zoom in" if zoom == "in" else "zoom out"
    return parts


#: A weaker rotation / zoom tuning, worded as the measured asymmetry between the two opposite stimuli.
_WEAKER = {
    "clockwise rotation": "answers clockwise rotation more than counter-clockwise",
    "counter-clockwise rotation": "answers counter-clockwise rotation more than clockwise",
    "zoom in": "answers zoom in more than zoom out",
    "zoom out": "answers zoom out more than zoom in",
}


def reading_text(row: Mapping[str, Any] | pd.Series) -> str:
    """Short measured reading: ``"prefers clockwise rotation"`` (the primary motion; then "; also ..." for
    weaker tuned ones), or ``"untuned"``."""
    if not bool(_get(row, "tuned", False)):
        return "untuned"
    parts = _parts(row)
    primary = str(_get(row, "measured_motion", ""))
    head = parts.pop(primary, None) or "a motion"
    if _get(row, "measured_speed_px") == 0:  # preferring the static clip is no translation to mention aside
        parts.pop("translation", None)
    # A weaker tuning is only an asymmetry between two opposite stimuli (an asymmetric translation filter
    # answers one rotation sense a little more, too): say exactly that, not that the channel detects it.
    weaker = [f"also {parts['translation']}"] if "translation" in parts else []
    weaker += [_WEAKER[phrase] for kind, phrase in parts.items() if kind != "translation"]
    extra = f"; {' and '.join(weaker)}" if weaker else ""
    return f"prefers {head}{extra}"


def measured_sentence(row: Mapping[str, Any] | pd.Series) -> str:
    """The card's headline: what image motion the channel measurably prefers, with its tuning strength, and
    which of these readings the measurement does not decide (``undecided_readings``: within their sampling
    error over the texture views, :mod:`conv3t.verify.sequential`)."""
    strength = float(_get(row, "tuning_strength", 0.0))
    if not bool(_get(row, "tuned", False)):
        text = (
            f"Untuned: it responds about equally to every motion probed, in both directions (tuning strength "
            f"{strength:.2f}, below the threshold)."
        )
    else:
        reading = reading_text(row)
        text = f"Measured in the image: {reading[0].lower() + reading[1:]} (tuning strength {strength:.2f} of 1)."
    return text + _undecided(row)


#: How the readings :mod:`conv3t.verify.sequential` names are worded on a card.
_READING_WORDS = {
    "tuned": "whether it is tuned",
    "speed": "the speed",
    "direction": "the direction",
    "translation": "translation tuning",
    "rotation": "rotation tuning",
    "zoom": "zoom tuning",
    "primary": "which motion it prefers most",
    "agreement": "whether the parameters agree",
}


def _undecided(row: Mapping[str, Any] | pd.Series) -> str:
    """`` Not decided by the measurement (...): ...`` for a row flagged ``undecided``, else ``""``."""
    names = [n for n in str(_get(row, "undecided_readings", "") or "").split("; ") if n]
    if not bool(_get(row, "undecided", False)) or not names:
        return ""
    words = ", ".join(_READING_WORDS.get(n, n) for n in names)
    return f" Within its sampling error over the texture views, so not decided by the measurement: {words}."


def agreement_sentence(row: Mapping[str, Any] | pd.Series, layer_readable: bool | None = None) -> str:
    """Whether the parameters, carried to image space, predict the measured primary motion.

    ``layer_readable``: the layer's verdict (:func:`conv3t.verify.readings.layer_verdicts`); False adds that
    the layer's parameters in general do not read as image motion. A row with ``steps_in_clip`` 0 (the
    parameters have no effect at this clip length) says so.
    """
    agree = _get(row, "parameters_agree")
    if agree is not None and int(_get(row, "steps_in_clip", 1)) == 0:
        text = (
            "Disagrees: its parameters have no effect at this clip length, so its preference comes from the "
            "layers before it."
        )
    elif agree is None:
        text = "Nothing to compare: the channel is untuned, so no image motion can confirm its parameters."
    else:
        motion = str(_get(row, "measured_motion", ""))
        predicted = _predicted(row, motion)
        if bool(agree):
            text = f"Agrees: its parameters, carried to the image, predict {predicted}."
        else:
            text = f"Disagrees: its parameters, carried to the image, predict {predicted}, not what it prefers."
    if layer_readable is False:
        text += " In this model the layer's parameters do not read as image motion (see Verification)."
    return text


def _amount(value: float) -> str:
    value = abs(value)
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _predicted(row: Mapping[str, Any] | pd.Series, motion: str) -> str:
    if motion == "translation":
        speed = float(_get(row, "pred_speed_px", 0.0))
        if speed < 0.05:
            return "almost no drift"
        return f"a drift {direction_word(float(_get(row, 'pred_direction_deg', 0.0)))} at {_amount(speed)} px/frame"
    if motion == "rotation":
        rot = float(_get(row, "pred_rotation_cw_deg", 0.0))
        sense = "clockwise" if rot > 0 else "counter-clockwise"
        return f"{_amount(rot)}° per frame {sense}"
    if motion == "zoom":
        zoom = float(_get(row, "pred_zoom_percent", 0.0))
        return f"a zoom {'in' if zoom > 0 else 'out'} of {_amount(zoom)}% per frame"
    return "no motion"


def prediction_sentence(record: Mapping[str, Any]) -> str:
    """``"Predicted rotate_cw (97 %): mostly from channels that prefer clockwise rotation (measured): conv1 #2,
    conv1 #5; also layer1.0.conv1 #3 (untuned)."`` from a ``predictions.json`` record."""
    top = record["top"][0]
    head = f"Predicted {top['class']} ({top['probability']:.0%})"
    channels = [dict(c) for c in record.get("channels", [])]
    if not channels:
        return f"{head}: no channel of the attributed layers pushed towards it (all attributions ≤ 0)."
    for ch in channels:  # grouped by the primary reading (what comes before "; also ...")
        ch["_key"] = (ch.get("reading") or "not measured").split(";")[0]
    weight: dict[str, float] = {}
    for ch in channels:
        weight[ch["_key"]] = weight.get(ch["_key"], 0.0) + float(ch["attribution"])
    main = max(weight, key=lambda k: weight[k])
    share = weight[main] / sum(weight.values())

    def names(reading: str) -> str:
        return ", ".join(f"{c['layer']} #{c['channel']}" for c in channels if c["_key"] == reading)

    most = "mostly" if share >= 0.5 else "the largest part"  # of the listed channels' attribution
    if main == "untuned":
        lead = f"{most} from untuned channels ({names(main)})"
    elif main == "not measured":
        lead = f"{most} from {names(main)} (motion preference not measured)"
    else:
        verb = main.replace("prefers", "prefer", 1)
        lead = f"{most} from channels that {verb} (measured): {names(main)}"
    others = sorted((r for r in weight if r != main), key=lambda r: -weight[r])
    rest = [f"{names(r)} ({r})" for r in others[:2]] + (["…"] if len(others) > 2 else [])
    tail = f"; also {'; '.join(rest)}" if rest else ""
    return f"{head}: {lead}{tail}."
