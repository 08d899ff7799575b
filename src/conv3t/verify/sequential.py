"""Sampled readings with their sampling error over texture views, and the rule that stops adding views.

Image mode measures a channel's energies on ``V`` random views of the texture per motion and reads its tuning
from their mean (:mod:`conv3t.verify.tuning`). Each reading the report shows is a function of those means, so
its sampling error is estimated by the jackknife over views (leave one view out, recompute the reading; the
standard error is ``sqrt((V - 1) / V * sum (r_(-v) - mean r_(-v))^2)``, exact ``sd / sqrt(V)`` for a mean,
the usual estimator for ratios such as the tuning indices).

A reading is *decided* when it is farther from the value that would change it than its uncertainty allows
(docs/conventions.md, "Sequential views", fixed before any model was measured with it). Per channel:

* ``translation`` / ``rotation`` / ``zoom`` tuned or not: ``| |index| - threshold |``;
* ``primary`` (a tuned channel's primary motion type): its ratio ``|index| / threshold`` minus the next type's;
* ``speed`` (translation-tuned): the log energy ratio of the preferred speed's best clip (or the static clip) to
  the best clip of every other speed;
* ``direction`` (translation-tuned, moving): the direction's standard error must fit within
  :data:`DIRECTION_RESOLUTION_DEG` (half the probed directions' spacing), and, when the channel is counted (its
  parameters predict motion), ``| angle error - 45 deg |``, the distance from the agreement limit;

each ``margin >= q * SE`` with ``q`` Student's t quantile at two-sided level :data:`ALPHA_DECIDE` with ``V - 1``
degrees of freedom. A reading that would not be decided even at the cap of views (its margin below
``q_cap * SE * sqrt(V / cap)``, the standard error shrinking like ``1 / sqrt(views)``) is *undecidable*: more
views are not expected to settle it. Views are added in rounds; the measurement stops when no channel has a
reading that is neither decided nor undecidable, or at the cap. Channels with any reading not decided at the
end are flagged ``undecided`` and name the readings (``undecided_readings``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from conv3t.verify.energies import ViewStats
from conv3t.verify.stimuli import Motion
from conv3t.verify.tuning import tuning_table

__all__ = [
    "ALPHA_DECIDE",
    "DIRECTION_RESOLUTION_DEG",
    "STOPPING_READINGS",
    "UNCERTAINTY_COLUMNS",
    "Decision",
    "Thresholds",
    "decide",
    "jackknife",
    "student_t_quantile",
]

#: Columns :class:`Decision` adds to a verification's channel table (besides ``pending``).
UNCERTAINTY_COLUMNS: tuple[str, ...] = (
    "undecided",
    "undecided_readings",
    "translation_index_se",
    "rotation_index_se",
    "zoom_index_se",
    "direction_se_deg",
)
#: The readings the stopping rule waits for (module notes): every channel's ``tuned``, and ``speed`` and
#: ``direction`` of channels whose primary motion is a translation; the others (and those two where they are
#: secondary) are flagged when undecided, not waited for.
STOPPING_READINGS: tuple[str, ...] = ("tuned", "speed", "direction")
#: Two-sided level of each reading's decision (per reading and look).
ALPHA_DECIDE = 0.01
#: A measured direction is decided when ``q * SE`` is at most this: half the spacing of the 12 probed directions.
DIRECTION_RESOLUTION_DEG = 15.0
#: The agreement limit of a measured and a predicted direction (``conv3t.verify.network.AGREE_ANGLE_DEG``).
_AGREE_DEG = 45.0
_CIRCULAR = ("direction",)


def student_t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (``0.5 < p < 1``) of Student's t with ``df >= 1`` degrees of freedom (bisection on the
    CDF, integrated by Simpson's rule on the substitution ``t = tan(a)`` (finite range); error < 1e-7)."""
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f"need 0.5 < p < 1 and df >= 1, got {p}, {df}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        a = np.linspace(0.0, math.atan(x), 4001)
        t = np.tan(a)
        f = np.exp(log_c - (df + 1) / 2 * np.log1p(t * t / df)) / np.cos(a) ** 2
        h = a[1] - a[0]
        return 0.5 + h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        hi *= 2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Thresholds:
    """What the readings are judged against (:class:`conv3t.verify.network.VerifyConfig`'s fields)."""

    translation: float = 0.1
    rotation: float = 0.05
    zoom: float = 0.05
    min_speed: float = 0.1


def jackknife(
    stats: ViewStats, statistic: Callable[[np.ndarray], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``statistic`` of all views' ``(M, C, 2)`` energies and its jackknife standard error over views.

    Returns ``(estimate, se)``, dicts of ``(C,)`` arrays; keys in ``_CIRCULAR`` are angles in degrees (their
    leave-one-out deviations are wrapped to ``(-180, 180]``). With fewer than 2 views the errors are infinite.
    """
    est = statistic(stats.energies().numpy())
    v = stats.views
    if v < 2:
        return est, {k: np.full_like(x, np.inf, dtype=float) for k, x in est.items()}
    reps = [statistic(stats.energies([u != out for u in range(v)]).numpy()) for out in range(v)]
    se = {}
    for key, value in est.items():
        r = np.stack([rep[key] for rep in reps]).astype(float)  # (V, C)
        if key in _CIRCULAR:
            r = (r - value + 180.0) % 360.0 - 180.0
        se[key] = np.sqrt((v - 1) / v * ((r - r.mean(axis=0)) ** 2).sum(axis=0))
    return est, se


def _speed_candidates(e: np.ndarray, motions: Sequence[Motion]) -> np.ndarray:
    """``(1 + S, C)`` log energies: the static clip's (whole map), then each probed speed's best over directions."""
    speeds = sorted({round(m.speed, 9) for m in motions if m.kind == "translation"})
    rows = [[[m.kind for m in motions].index("static")]]
    rows += [[i for i, m in enumerate(motions) if m.kind == "translation" and round(m.speed, 9) == s] for s in speeds]
    return np.log(np.maximum(np.stack([e[r].max(axis=0) for r in rows]), 1e-300))


def _ratios(tab: pd.DataFrame, thr: Thresholds) -> np.ndarray:
    """``(3, C)``: ``|index| / threshold`` of translation, rotation and zoom (0 where undefined)."""
    index = np.abs(tab[["translation_index", "rotation_index", "zoom_index"]].to_numpy(float).T)
    limits = np.array([thr.translation, thr.rotation, thr.zoom])[:, None]
    return np.nan_to_num(index / limits)


def _runner_up(values: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """``(C,)``: ``values[choice] - max(values[other])`` for ``(K, C)`` values and ``(C,)`` chosen rows."""
    rows = np.arange(len(values))[:, None]
    return values[choice, np.arange(values.shape[1])] - np.where(rows == choice[None], -np.inf, values).max(axis=0)


def _statistic(
    motions: Sequence[Motion], thr: Thresholds, primary: np.ndarray, speed: np.ndarray
) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """The readings' margins from ``(M, C, 2)`` energies, for :func:`jackknife`; ``primary`` (type) and ``speed``
    (row of :func:`_speed_candidates`) are the all-view choices whose lead over the rest is measured."""

    def statistic(e: np.ndarray) -> dict[str, np.ndarray]:
        tab = tuning_table(e[..., 0], motions, centre_energy=e[..., 1])
        ratio = _ratios(tab, thr)
        return {
            "tuned": ratio.max(axis=0) - 1.0,
            "translation": ratio[0] * thr.translation - thr.translation,
            "rotation": ratio[1] * thr.rotation - thr.rotation,
            "zoom": ratio[2] * thr.zoom - thr.zoom,
            "primary": _runner_up(ratio, primary),
            "speed": _runner_up(_speed_candidates(e[..., 0], motions), speed),
            "direction": tab["measured_direction_deg"].to_numpy(float),
        }

    return statistic


@dataclass(frozen=True)
class Decision:
    """Which readings the views so far decide (module notes).

    Attributes:
        views: views measured.
        channels: one row per layer x channel: ``undecided`` (bool), ``undecided_readings`` (the readings not
            decided, ``"; "``-joined, ``""`` when none), ``pending`` (bool: more views may settle one),
            ``translation_index_se``, ``rotation_index_se``, ``zoom_index_se`` (jackknife standard errors of
            the tuning indices) and ``direction_se_deg``.
    """

    views: int
    channels: pd.DataFrame

    @property
    def pending(self) -> int:
        """Channels with a reading that is neither decided nor undecidable at the cap."""
        return int(self.channels["pending"].sum())


def _criteria(
    stats: ViewStats, motions: Sequence[Motion], thr: Thresholds, predicted: np.ndarray | None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Per reading: ``(margin, standard error, shown, waited for)``, each ``(C,)`` (the last two bool: the reading
    is shown for the channel; the stopping rule waits for it), and the standard errors by statistic.
    ``predicted``: ``(C, 2)`` the parameters' ``(vx, vy)`` per frame, or None (agreement not judged)."""
    e = stats.energies().numpy()
    ratio = _ratios(tuning_table(e[..., 0], motions, centre_energy=e[..., 1]), thr)
    primary = ratio.argmax(axis=0)
    speed = _speed_candidates(e[..., 0], motions).argmax(axis=0)
    est, se = jackknife(stats, _statistic(motions, thr, primary, speed))
    tuned = est["tuned"] >= 0
    shown = est["translation"] >= 0  # a speed is shown, and a direction when it is not the static clip's
    headline = tuned & (primary == 0)  # the stopping rule's: speed and direction of a translation-tuned channel
    every, none = np.ones_like(tuned), np.zeros_like(tuned)
    criteria = {
        "tuned": (np.abs(est["tuned"]), se["tuned"], every, every),
        "speed": (est["speed"], se["speed"], shown, headline),
        "direction": (
            np.full_like(se["direction"], DIRECTION_RESOLUTION_DEG),
            se["direction"],
            shown & (speed > 0),
            headline,
        ),
        **{k: (np.abs(est[k]), se[k], every, none) for k in ("translation", "rotation", "zoom")},
        "primary": (est["primary"], se["primary"], tuned, none),
    }
    if predicted is not None:
        pred_dir = np.degrees(np.arctan2(predicted[:, 1], predicted[:, 0])) % 360.0
        error = np.abs((est["direction"] - pred_dir + 180.0) % 360.0 - 180.0)
        counted = shown & (speed > 0) & (np.hypot(*predicted.T) >= thr.min_speed)
        criteria["agreement"] = (np.abs(error - _AGREE_DEG), se["direction"], counted, none)
    return criteria, se


def _layer_decision(
    stats: ViewStats, motions: Sequence[Motion], thr: Thresholds, predicted: np.ndarray | None, cap: int
) -> pd.DataFrame:
    """:class:`Decision`'s rows of one layer (module notes); ``predicted`` as for :func:`_criteria`."""
    criteria, se = _criteria(stats, motions, thr, predicted)
    names = list(criteria)
    margin, err, applies, stops = (np.stack([c[i] for c in criteria.values()]) for i in range(4))
    v = stats.views
    if v < 2:
        decided = futile = np.zeros(margin.shape, bool)
    else:
        q, q_cap = (student_t_quantile(1 - ALPHA_DECIDE / 2, n - 1) for n in (v, max(cap, v)))
        decided = margin >= q * err
        futile = margin < q_cap * err * math.sqrt(v / max(cap, v))
    open_ = applies & np.isfinite(margin) & ~decided
    return pd.DataFrame(
        {
            "channel": np.arange(margin.shape[1]),
            "undecided": open_.any(axis=0),
            "undecided_readings": ["; ".join(n for n, o in zip(names, col) if o) for col in open_.T],
            "pending": (open_ & ~futile & stops).any(axis=0),
            "translation_index_se": se["translation"],
            "rotation_index_se": se["rotation"],
            "zoom_index_se": se["zoom"],
            "direction_se_deg": se["direction"],
        }
    )


def decide(
    stats: Mapping[str, ViewStats],
    motions: Sequence[Motion],
    thresholds: Thresholds,
    cap: int,
    predicted: Mapping[str, np.ndarray] | None = None,
) -> Decision:
    """The decision after the views in ``stats`` (layer -> :class:`ViewStats`, all with the same views).

    Args:
        motions: the probe set the energies are of.
        thresholds: the readings' thresholds.
        cap: the most views the measurement may take (undecidable readings are judged against it).
        predicted: layer -> ``(C, 2)`` the parameters' predicted ``(vx, vy)`` (px per frame): the agreement of a
            counted channel's direction is a reading too; default: not judged.
    """
    views = {s.views for s in stats.values()}
    if len(views) != 1:
        raise ValueError(f"every layer must have the same views, got {sorted(views)}")
    parts = []
    for name, layer_stats in stats.items():
        rows = _layer_decision(layer_stats, motions, thresholds, None if predicted is None else predicted[name], cap)
        rows.insert(0, "layer", name)
        parts.append(rows)
    return Decision(views.pop(), pd.concat(parts, ignore_index=True))
