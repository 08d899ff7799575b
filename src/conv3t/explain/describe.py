"""Plain-language descriptions of channels and a ranking by how much temporal transformation they carry.

Public API::

    channel_summary(table: pandas.DataFrame) -> pandas.DataFrame
    describe_channel(rows: pandas.DataFrame) -> str
    describe_channels(table: pandas.DataFrame) -> pandas.DataFrame
    rank_channels(table: pandas.DataFrame, top: int | None = None, per_layer: bool = False) -> pandas.DataFrame

``table`` is the output of :func:`conv3t.explain.temporal_parameters` (``rows``: the rows of one layer and
channel). Conventions are those of that table: the content motion of the filter from one slice to the next.

Scale and rotation are read in the canonical form of :func:`conv3t.readout.canonical_scale_rotation`
(a negative scale ``s`` is a zoom by ``1/|s|`` plus a half turn), so sentences and summaries stay finite.

Score (``rank_channels``): how far the filter's content travels, counted only while the content is still in
the kernel. Step ``t``'s motion ``m_t = ||s| - 1| + |r'| + sqrt(t_x^2 + t_y^2)`` (raw units, canonical ``|s|``,
``r'``) is, to first order, how far the step moves a point on the kernel's edge (one ``affine_grid`` unit from
the centre): scaling by ``|s|`` moves it by ``||s| - 1|``, turning by ``r'`` radians by ``|r'|``, translating by
``|t|``; ``motion_score = sum_t m_t`` is roughly the distance, in half-kernel widths, that the content travels
over the ``D - 1`` steps (comparable across kernel sizes, zero at the identity). But the parameters of content
that has left the kernel (through the zero padding) change nothing and drift freely in training, so each step
is weighted by the share of the filter's content still inside the kernel after it, ``w_t = min(1,
content_inside_t)`` (column of ``temporal_parameters``: measured on the generated kernel, independent of the
blur that sub-pixel sampling causes and of the zoom's change of area), and a step whose two slices do not both
meet real frames of the measured clip (``step_in_clip`` False: e.g. a 3-deep kernel on a 1-frame input)
counts 0: ``score = sum_t [step_in_clip_t] w_t m_t``. A *dead*
channel, whose 2D filter norm is below ``DEAD_NORM_RATIO`` (5%) of the layer's median, gets score 0 and ranks
after every live channel. (The energy of the slices, ``retained_energy``, is reported but not used: sub-pixel
motion blurs fine filters and lowers it, which would penalise exactly the channels that move.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from conv3t.readout import canonical_scale_rotation
from conv3t.verify.readings import READING_COLUMNS

__all__ = [
    "DEAD_NORM_RATIO",
    "LEFT_CONTENT",
    "SUMMARY_COLUMNS",
    "channel_summary",
    "describe_channel",
    "describe_channels",
    "rank_channels",
]

# Below these per-step magnitudes a component is left out of the sentence.
ZOOM_PERCENT_MIN = 0.5
ROTATION_DEG_MIN = 0.5
DRIFT_KERNEL_PX_MIN = 0.05
# A component whose mean is smaller than this fraction of its mean magnitude goes back and forth.
CONSISTENCY = 0.5
# A channel whose 2D filter norm is below this fraction of the layer's median is dead.
DEAD_NORM_RATIO = 0.05
# A slice that keeps less than this share of the 2D filter's content inside the kernel has lost it.
LEFT_CONTENT = 0.1

_DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")
_REQUIRED = ("layer", "channel", "step", "scale", "rotation", "translation_x", "translation_y", "dx_kernel_px")

SUMMARY_COLUMNS: tuple[str, ...] = (
    "layer",
    "channel",
    "steps",
    "score",
    "motion_score",
    "content_inside",
    "retained_energy",
    "content_slices",
    "steps_in_clip",
    "filter_norm_ratio",
    "dead",
    "scale_score",
    "rotation_score",
    "translation_score",
    "zoom_percent",
    "rotation_cw_deg",
    "dx_kernel_px",
    "dy_kernel_px",
    "dx_image_px",
    "dy_image_px",
    "frames_per_step",
)


def _check(table: pd.DataFrame) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame from temporal_parameters(), got {type(table).__name__}")
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; pass the output of temporal_parameters()")


def _canonical(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return canonical_scale_rotation(rows["scale"].to_numpy(float), rows["rotation"].to_numpy(float))


def channel_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per layer and channel: the ranking score, what it is made of, and the mean motion per step.

    Returns:
        Columns :data:`SUMMARY_COLUMNS`: ``steps`` (``D - 1``); ``score`` (module docstring: motion weighted by
        the content left inside the kernel, 0 if dead); ``motion_score`` = ``scale_score + rotation_score +
        translation_score`` (sums over steps of ``||s|-1|``, ``|r'|``, ``|t|``; raw units, canonical form);
        ``content_inside`` (mean over steps of ``w_t = min(1, content_inside_t)``, in [0, 1]: 1 = the content
        stays in the kernel); ``retained_energy`` (mean over steps of ``min(1, slice_energy_t)``);
        ``content_slices`` (slices, counting ``K_1``, before the first whose ``content_inside`` is below
        ``LEFT_CONTENT`` = 10%; ``D`` if none); ``steps_in_clip`` (steps with ``step_in_clip``);
        ``filter_norm_ratio`` (2D filter norm over the layer's median)
        and ``dead`` (that ratio below ``DEAD_NORM_RATIO``); ``zoom_percent`` (per step, from the geometric mean
        of ``1/|s|``), ``rotation_cw_deg`` (canonical), ``dx_*``, ``dy_*`` (means per step),
        ``frames_per_step``. A table without the kernel columns (``content_inside``, ``slice_energy``,
        ``filter_norm_ratio``, ``step_in_clip``) gives NaN there, ``content_slices = D``, ``steps_in_clip =
        D - 1``, ``dead = False`` and ``score = motion_score``. Order: layers as in ``table``, channels ascending.
    """
    _check(table)
    abs_scale, rotation = _canonical(table)
    motion = np.abs(abs_scale - 1.0) + np.abs(rotation) + np.hypot(table["translation_x"], table["translation_y"])

    def optional(name: str) -> np.ndarray:
        return table[name].to_numpy(float) if name in table.columns else np.full(len(table), np.nan)

    inside = optional("content_inside")
    weight = np.where(np.isnan(inside), 1.0, np.minimum(inside, 1.0))
    in_clip = table["step_in_clip"].to_numpy(bool) if "step_in_clip" in table.columns else np.ones(len(table), bool)
    work = table.assign(
        _s=np.abs(abs_scale - 1.0),
        _r=np.abs(rotation),
        _t=np.hypot(table["translation_x"], table["translation_y"]),
        _w=weight,
        _e=np.minimum(optional("slice_energy"), 1.0),
        _weighted=motion * weight * in_clip,
        _in_clip=in_clip,
        _gone=inside < LEFT_CONTENT,  # NaN compares False
        _logzoom=-np.log(abs_scale),
        _rcw=-np.degrees(rotation),
    )
    for column in ("dx_image_px", "dy_image_px", "frames_per_step", "dy_kernel_px", "filter_norm_ratio"):
        if column not in work.columns:
            work[column] = np.nan
    grouped = work.groupby(["layer", "channel"], sort=False)
    out = grouped.agg(
        steps=("step", "size"),
        score=("_weighted", "sum"),
        steps_in_clip=("_in_clip", "sum"),
        content_inside=("_w", "mean"),
        retained_energy=("_e", "mean"),
        filter_norm_ratio=("filter_norm_ratio", "first"),
        scale_score=("_s", "sum"),
        rotation_score=("_r", "sum"),
        translation_score=("_t", "sum"),
        _logzoom=("_logzoom", "mean"),
        rotation_cw_deg=("_rcw", "mean"),
        dx_kernel_px=("dx_kernel_px", "mean"),
        dy_kernel_px=("dy_kernel_px", "mean"),
        dx_image_px=("dx_image_px", "mean"),
        dy_image_px=("dy_image_px", "mean"),
        frames_per_step=("frames_per_step", "first"),
    ).reset_index()
    keys = pd.MultiIndex.from_frame(out[["layer", "channel"]])
    first_gone = work.assign(_k=np.where(work["_gone"], work["step"] + 1, np.iinfo(np.int64).max))
    first_gone = first_gone.groupby(["layer", "channel"], sort=False)["_k"].min().reindex(keys).to_numpy()
    out["content_slices"] = np.minimum(first_gone, out["steps"].to_numpy() + 1)
    if "content_inside" not in table.columns:
        out["content_inside"] = np.nan
    out["dead"] = out["filter_norm_ratio"].to_numpy(float) < DEAD_NORM_RATIO  # NaN (unknown) is not dead
    out["motion_score"] = out["scale_score"] + out["rotation_score"] + out["translation_score"]
    out.loc[out["dead"], "score"] = 0.0
    out["zoom_percent"] = np.expm1(out["_logzoom"]) * 100.0
    layer_order = {name: i for i, name in enumerate(dict.fromkeys(table["layer"]))}
    out = out.sort_values(["layer", "channel"], key=lambda s: s.map(layer_order) if s.name == "layer" else s)
    return out[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def _order(summary: pd.DataFrame) -> pd.DataFrame:
    """Dead last; with readings: channels with no temporal effect after live ones, then tuned channels by
    tuning strength before untuned ones by score."""
    if "tuned" not in summary.columns:
        return summary.sort_values(["dead", "score"], ascending=[True, False], kind="stable")
    tuned = summary["tuned"].fillna(False).astype(bool)
    key = summary.assign(
        _no_effect=summary["steps_in_clip"] == 0,
        _untuned=~tuned,
        _key=np.where(tuned, -summary["tuning_strength"].fillna(0.0), -summary["score"]),
    )
    order = key.sort_values(["dead", "_no_effect", "_untuned", "_key"], kind="stable").index
    return summary.loc[order]


def rank_channels(
    table: pd.DataFrame,
    top: int | None = None,
    per_layer: bool = False,
    readings: pd.DataFrame | None = None,
    readable: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """Channels sorted by their score (module docstring), most transformed first, dead channels last.

    Args:
        table: output of ``temporal_parameters``.
        top: keep only the first ``top`` channels (per layer if ``per_layer``); None keeps all.
        per_layer: rank within each layer (layers in their order) instead of across the model.
        readings: measured readings, :func:`conv3t.verify.readings.channel_readings` (image mode). With them
            the ranking prefers strongly tuned channels (below) and the sentences state the measurement.
        readable: layer -> whether its parameters read as image motion (the verification's layer verdicts);
            False adds a warning to the agreement sentence.

    Returns:
        :func:`channel_summary` rows plus ``rank`` (1 = first; within the layer if ``per_layer``) and
        ``sentence`` (:func:`describe_channel`). Without ``readings``, live channels come first by
        descending ``score``, then dead ones (score 0); ties keep channel order. With ``readings``: also the
        columns :data:`~conv3t.verify.readings.READING_COLUMNS`, ``tuned`` and ``measured_motion``; the order is
        tuned channels by descending ``tuning_strength``, then untuned ones by ``score``, then channels with no
        temporal effect (``steps_in_clip`` 0), then dead ones; ``sentence`` is the measured headline followed
        by the parameter reading, also given apart as ``measured_sentence``, ``parameter_sentence`` (worded
        in the image for the model's first Conv3T layer, "in its input features" for the others) and
        ``agreement_sentence``.
    """
    if top is not None and top < 1:
        raise ValueError(f"top must be a positive int or None, got {top}")
    summary = channel_summary(table)
    summary["sentence"] = _describe(table, summary)
    extra: list[str] = []
    if readings is not None:
        summary = _with_readings(table, summary, readings, readable or {})
        extra = [*_READING_COLUMNS, "tuned", "measured_motion", *_UNCERTAINTY_COLUMNS, *_SENTENCE_COLUMNS]
    if per_layer:
        parts = []
        for _, group in summary.groupby("layer", sort=False):
            ranked = _order(group)
            ranked = ranked.assign(rank=np.arange(1, len(ranked) + 1))
            parts.append(ranked if top is None else ranked.head(top))
        ranked = pd.concat(parts) if parts else summary.assign(rank=pd.Series(dtype="int64"))
    else:
        ranked = _order(summary)
        ranked = ranked.assign(rank=np.arange(1, len(ranked) + 1))
        if top is not None:
            ranked = ranked.head(top)
    columns = ["rank", *SUMMARY_COLUMNS, "sentence", *extra]
    return ranked[columns].reset_index(drop=True)


_READING_COLUMNS = READING_COLUMNS  # the columns ranking.csv gains, owned by conv3t.verify.readings
_SENTENCE_COLUMNS = ("measured_sentence", "parameter_sentence", "agreement_sentence")
#: Which readings the measurement leaves undecided (:func:`conv3t.verify.readings.channel_readings`); readings
#: without them (made by hand, or by older code) count as decided.
_UNCERTAINTY_COLUMNS = ("undecided", "undecided_readings")


def _with_readings(
    table: pd.DataFrame, summary: pd.DataFrame, readings: pd.DataFrame, readable: Mapping[str, bool]
) -> pd.DataFrame:
    from conv3t.explain.measured import agreement_sentence, measured_sentence

    wanted = [*_READING_COLUMNS, "tuned", "measured_motion"]
    missing = [c for c in ("layer", "channel", *wanted) if c not in readings.columns]
    if missing:
        raise ValueError(f"readings lack columns {missing}; pass conv3t.verify.readings.channel_readings() output")
    readings = readings.assign(
        undecided=readings.get("undecided", False),
        undecided_readings=readings.get("undecided_readings", ""),
    )
    cols = ["layer", "channel", *wanted, *_UNCERTAINTY_COLUMNS, *[c for c in readings.columns if c.startswith("pred_")]]
    merged = summary.merge(readings[cols], on=["layer", "channel"], how="left")
    merged["undecided"] = merged["undecided"].eq(True)
    merged["undecided_readings"] = merged["undecided_readings"].fillna("").astype(str)
    merged["tuned"] = merged["tuned"].astype(object).where(merged["tuned"].notna(), False).astype(bool)
    merged["measured_rotation"] = merged["measured_rotation"].fillna("")
    merged["measured_zoom"] = merged["measured_zoom"].fillna("")
    merged["measured_motion"] = merged["measured_motion"].fillna("")
    # a tuned channel whose parameters have no effect at this clip length cannot owe its preference to them
    no_effect = merged["steps_in_clip"].to_numpy() == 0
    merged["parameters_agree"] = [
        None if pd.isna(v) else bool(v) and not off for v, off in zip(merged["parameters_agree"], no_effect)
    ]
    first = str(table["layer"].iloc[0]) if len(table) else ""
    merged["parameter_sentence"] = _describe(table, merged, first_layer=first)
    merged["measured_sentence"] = [
        measured_sentence(r) if r["layer"] in set(readings["layer"]) else "Not measured." for _, r in merged.iterrows()
    ]
    merged["agreement_sentence"] = [agreement_sentence(r, readable.get(r["layer"])) for _, r in merged.iterrows()]
    merged["sentence"] = merged["measured_sentence"] + " " + merged["parameter_sentence"]
    merged.index = summary.index
    return merged


def _number(value: float) -> str:
    value = abs(value)
    text = f"{value:.0f}" if value >= 10 else f"{value:.2g}"
    return text


def _direction(dx: float, dy: float) -> str:
    angle = math.degrees(math.atan2(dy, dx))  # y down: +90 = down
    return _DIRECTIONS[round(angle / 45.0) % 8]


def _per(frames: float) -> str:
    if not np.isfinite(frames):
        return "per step"
    if frames == 1:
        return "per frame"
    return f"per {frames:g} frames"


def _sentence(row: pd.Series, step_values: dict[str, np.ndarray], space: str = "image") -> str:
    if bool(row["dead"]):
        return (
            f"Dead: its 2D filter is nearly zero ({_number(100 * float(row['filter_norm_ratio']))}% of the layer's "
            "median norm), so its temporal parameters have no effect."
        )
    if int(row["steps_in_clip"]) == 0:
        return "Has no temporal effect at this clip length: too few input frames reach its slices."
    steps, kept = int(row["steps"]), int(row["content_slices"])
    leaves = kept <= steps
    # the step that empties the kernel is the last one that means anything; steps outside the clip show nothing
    keep = (np.arange(steps) < min(kept, steps)) & step_values["in_clip"].astype(bool)
    if not keep.any():  # the content left during steps outside the clip
        keep = np.arange(steps) < min(kept, steps)
    step_values = {name: values[keep] for name, values in step_values.items()}
    motion = _motion(row, step_values, space)
    if not leaves:
        return motion
    note = f"Its content leaves the filter after {kept} of {steps + 1} slices."
    return note if motion.startswith("Barely") else f"{motion} {note}"


def _motion(row: pd.Series, step_values: dict[str, np.ndarray], space: str = "image") -> str:
    """The parameters' motion in words; ``space="input"`` words it in the layer's input (kernel pixels per
    step), for layers whose input is not the image."""
    parts: list[str] = []
    zoom = step_values["zoom"]
    zoom_mag = float(np.mean(np.abs(zoom)))
    if zoom_mag >= ZOOM_PERCENT_MIN:
        mean = float(np.expm1(np.mean(step_values["log_zoom"])) * 100.0)
        if abs(mean) >= CONSISTENCY * zoom_mag:
            parts.append(f"zooms {'in' if mean > 0 else 'out'} {_number(mean)}%")
        else:
            parts.append(f"zooms in and out by about {_number(zoom_mag)}%")
    rot = step_values["rotation"]
    rot_mag = float(np.mean(np.abs(rot)))
    if rot_mag >= ROTATION_DEG_MIN:
        mean = float(np.mean(rot))
        if round(abs(mean)) == 180:  # a half turn has no sense
            parts.append("turns 180°")
        elif abs(mean) >= CONSISTENCY * rot_mag:
            parts.append(f"turns {_number(mean)}° {'clockwise' if mean > 0 else 'counter-clockwise'}")
        else:
            parts.append(f"turns back and forth by about {_number(rot_mag)}°")
    kx, ky = step_values["dx_kernel"], step_values["dy_kernel"]
    drift_mag_kernel = float(np.mean(np.hypot(kx, ky)))
    if drift_mag_kernel >= DRIFT_KERNEL_PX_MIN:
        image = space == "image" and np.isfinite(row["dx_image_px"]) and np.isfinite(row["dy_image_px"])
        dx, dy = (step_values["dx_image"], step_values["dy_image"]) if image else (kx, ky)
        unit = "px" if image else "kernel px"
        mean_x, mean_y = float(np.mean(dx)), float(np.mean(dy))
        mean_len = math.hypot(mean_x, mean_y)
        mag = float(np.mean(np.hypot(dx, dy)))
        if mean_len >= CONSISTENCY * mag:
            parts.append(f"drifts {_number(mean_len)} {unit} {_direction(mean_x, mean_y)}")
        else:
            parts.append(f"jitters back and forth by about {_number(mag)} {unit}")
    if not parts:
        return "Barely changes over time: its slices stay close to the 2D filter."
    parts[0] = f"{parts[0]} {_per(float(row['frames_per_step']) if space == 'image' else math.nan)}"
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    if space == "input":
        return f"In its input features, its parameters say: {text}."
    return text[0].upper() + text[1:] + "."


def _step_values(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-step arrays of one channel, in step order, scale and rotation in the canonical form."""
    rows = rows.sort_values("step", kind="stable")

    def column(name: str) -> np.ndarray:
        return rows[name].to_numpy(float) if name in rows.columns else np.full(len(rows), np.nan)

    abs_scale, rotation = _canonical(rows)
    return {
        "log_zoom": -np.log(abs_scale),
        "zoom": (1.0 / abs_scale - 1.0) * 100.0,
        "rotation": -np.degrees(rotation),
        "dx_kernel": column("dx_kernel_px"),
        "dy_kernel": column("dy_kernel_px"),
        "dx_image": column("dx_image_px"),
        "dy_image": column("dy_image_px"),
        "in_clip": rows["step_in_clip"].to_numpy(bool) if "step_in_clip" in rows.columns else np.ones(len(rows), bool),
    }


def describe_channel(rows: pd.DataFrame) -> str:
    """One plain sentence for one channel, e.g. ``"Zooms out 4% per frame, turns 3° clockwise and drifts
    0.6 px up-left."``

    Args:
        rows: the ``temporal_parameters`` rows of a single layer and channel (all its steps).

    Returns:
        The sentence. A dead channel (:func:`channel_summary`) gets "Dead: its 2D filter is nearly zero (N% of
        the layer's median norm), ..." instead, and a channel with no step in the clip (``steps_in_clip`` 0)
        "Has no temporal effect at this clip length: ..."; otherwise only the steps in the clip are described.
        When the content leaves the filter (less than ``LEFT_CONTENT``
        of it is still inside the kernel) the sentence describes only the steps up to the one that empties it
        and ends with "Its content leaves the filter after k of D slices." A negative scale reads as a zoom
        by ``1/|s|`` plus a half turn ("turns 180°" when the mean turn rounds to a half turn).
        Rates are means per step (zoom from the geometric mean of ``1/|s|``); "per frame" becomes
        "per N frames" when slices are N input frames apart and "per step" when that is unknown. Distances are
        input-image pixels ("px") when the table has them, else "kernel px". Components below 0.5%, 0.5° or
        0.05 kernel px per step are left out; one whose mean is less than half its mean magnitude is described
        as going back and forth, with its mean magnitude per step. The rate ("per frame") is said once, after
        the first component, and holds for all.
    """
    _check(rows)
    if rows.empty:
        raise ValueError("rows is empty: pass the rows of one layer and channel")
    if rows["layer"].nunique() != 1 or rows["channel"].nunique() != 1:
        raise ValueError("rows must belong to a single layer and channel")
    summary = channel_summary(rows).iloc[0]
    return _sentence(summary, _step_values(rows))


def _describe(table: pd.DataFrame, summary: pd.DataFrame, first_layer: str | None = None) -> list[str]:
    """Sentences in the image (every layer, or only ``first_layer`` when given; the others "in its input")."""
    groups = dict(iter(table.groupby(["layer", "channel"], sort=False)))
    return [
        _sentence(
            row,
            _step_values(groups[(row["layer"], row["channel"])]),
            "image" if first_layer is None or row["layer"] == first_layer else "input",
        )
        for _, row in summary.iterrows()
    ]


def describe_channels(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`describe_channel` for every channel of ``table``.

    Returns:
        Columns ``layer``, ``channel``, ``sentence``, in the order of :func:`channel_summary`.
    """
    summary = channel_summary(table)
    sentences = _describe(table, summary)
    return pd.DataFrame({"layer": summary["layer"], "channel": summary["channel"], "sentence": sentences})
