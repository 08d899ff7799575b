"""The typed values of the faithfulness checks: what goes in (:class:`Explanation`) and what comes out
(:class:`FaithfulnessResult` and its parts), with the ``predictions.json`` form of each (docs/conventions.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from conv3t.explain.faithfulness.stats import RankTest
from conv3t.explain.methods.explanation import Explanation

__all__ = [
    "ChannelAblation",
    "Explanation",
    "FaithfulnessResult",
    "PerturbationCurve",
    "RandomisationStep",
    "RandomisationTest",
    "Verdict",
]


def _num(x: float) -> float | None:
    """A JSON number; NaN (undefined) becomes ``null``."""
    return None if x is None or not math.isfinite(x) else float(x)


def _test_json(test: RankTest | None) -> dict[str, Any] | None:
    if test is None:
        return None
    return {
        "observed": _num(test.observed),
        "random_mean": _num(test.random_mean),
        "random_std": _num(test.random_std),
        "draws": test.draws,
        "p_value": _num(test.p_value),
        "min_p": _num(test.min_p),
        "method": test.method,
        "best": None if test.best is None else _num(test.best),
    }


@dataclass(frozen=True)
class ChannelAblation:
    """The target's softmax probability with the credited channels' outputs set to zero, and with as many
    channels drawn at random from the same layers (same count per layer): ``draws`` random sets (or every
    possible set, ``test.exact``). ``test``: the rank test of ``p_after_credited`` (lower is better);
    ``logit_*``: the target's logit, beside the probabilities."""

    k: int
    p_before: float
    p_after_credited: float
    p_after_random_mean: float
    p_after_random_std: float
    draws: int
    test: RankTest | None = None
    logit_before: float | None = None
    logit_after_credited: float | None = None
    logit_after_random_mean: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "p_before": _num(self.p_before),
            "p_after_credited": _num(self.p_after_credited),
            "p_after_random_mean": _num(self.p_after_random_mean),
            "p_after_random_std": _num(self.p_after_random_std),
            "draws": self.draws,
            "logit_before": _opt(self.logit_before),
            "logit_after_credited": _opt(self.logit_after_credited),
            "logit_after_random_mean": _opt(self.logit_after_random_mean),
            "test": _test_json(self.test),
        }


def _opt(x: float | None) -> float | None:
    return None if x is None else _num(x)


@dataclass(frozen=True)
class PerturbationCurve:
    """A deletion or insertion curve: the target's probability after each step, in the explanation's order
    (``curve``) and the area under it against ``draws`` random orders.

    ``auc``: trapezoidal area over the fractions actually removed (or inserted), ``fractions`` (0..1), so in
    probability units 0..1; ``random_auc_*`` over the random orders compared. ``rule``: what "deleted" means.
    ``road_residual``: the largest relative residual of the ROAD systems solved (spatial deletion). Exact frame
    tests keep the explanation's ``order`` (ties broken) and ``subset_table``, the probability with each subset
    of frames deleted (bit ``t`` of the index: frame ``t``), from which any other order is tested (not in JSON).
    ``logit_curve`` / ``logit_auc``: the same with the target's logit. ``lerf_curve``: least relevant first
    (spatial deletion). ``test``: the rank test of the checked statistic (``statistic`` says which; for frames
    the AUC, for pixels LeRF - MoRF AUC); ``effect``: exact tests (random mean - auc) / (random mean - best
    possible) (1: the best possible order, 0: chance); Monte-Carlo frame tests (random mean - auc) / random
    std; pixels: the gain minus the random maps' mean gain; signs turned so that larger is better.
    """

    auc: float
    random_auc_mean: float
    random_auc_std: float
    rule: str
    curve: tuple[float, ...]
    draws: int
    fractions: tuple[float, ...] = ()
    logit_curve: tuple[float, ...] = ()
    logit_auc: float | None = None
    lerf_curve: tuple[float, ...] = ()
    test: RankTest | None = None
    statistic: str = "auc"
    effect: float | None = None
    road_residual: float | None = None
    order: tuple[int, ...] = ()
    subset_table: tuple[float, ...] = ()

    @property
    def p_value(self) -> float | None:
        return None if self.test is None or not self.test.testable else self.test.p_value

    def to_json(self) -> dict[str, Any]:
        return {
            "auc": _num(self.auc),
            "random_auc_mean": _num(self.random_auc_mean),
            "random_auc_std": _num(self.random_auc_std),
            "rule": self.rule,
            "curve": [_num(p) for p in self.curve],
            "fractions": [_num(f) for f in self.fractions],
            "logit_curve": [_num(v) for v in self.logit_curve],
            "logit_auc": _opt(self.logit_auc),
            "lerf_curve": [_num(p) for p in self.lerf_curve],
            "draws": self.draws,
            "statistic": self.statistic,
            "effect": _opt(self.effect),
            "road_residual": _opt(self.road_residual),
            "order": list(self.order),
            "test": _test_json(self.test),
        }


@dataclass(frozen=True)
class RandomisationStep:
    """Spearman rank correlation between the explanation of the trained model and that of a copy whose layer
    groups ``layers_randomised`` (top first, cumulative) have random weights. NaN: undefined (an explanation
    became constant), or not computed."""

    layers_randomised: tuple[str, ...]
    gradcam_rank_corr: float
    frame_importance_rank_corr: float
    channel_rank_corr: float

    def to_json(self) -> dict[str, Any]:
        return {
            "layers_randomised": list(self.layers_randomised),
            "gradcam_rank_corr": _num(self.gradcam_rank_corr),
            "frame_importance_rank_corr": _num(self.frame_importance_rank_corr),
            "channel_rank_corr": _num(self.channel_rank_corr),
        }


@dataclass(frozen=True)
class RandomisationTest:
    """The sanity test of one explanation kind against a null (docs/conventions.md): the explanation of the
    trained model and those of ``seeds`` fully randomised copies (independent seeds) are exchangeable when the
    explanation does not depend on what was learned. ``trained_corr``: mean rank correlation of the trained
    model's explanation with the randomised ones; ``null_corr``: mean correlation of two randomised ones;
    ``p_value``: how likely unrelated explanations reach ``trained_corr`` (the larger of the item-permutation
    and the sequential sign test's p-value over the draws; small: the explanation survives the randomisation);
    ``constant``: how many explanations were constant (then undefined). ``seeds``: ``K``, the most draws the
    test may take (randomised copies, or other classes for random logit); ``draws_used``: how many it took (it
    stops at its first non-positive correlation, :mod:`~conv3t.explain.faithfulness.sanity_stats`; 0 in results
    written before that rule: all ``seeds``). ``seed_corrs``: the correlation with each draw used; ``min_p``: the
    smallest p-value reachable (``2^-seeds``; above ALPHA: not testable). ``absolute_corr``, ``absolute_p``: the
    same test on ``|scores|`` (reported, not judged; conventions.md)."""

    kind: str
    trained_corr: float
    null_corr: float
    p_value: float | None
    seeds: int
    constant: int
    seed_corrs: tuple[float, ...] = ()
    min_p: float = 0.0
    absolute_corr: float = float("nan")
    absolute_p: float | None = None
    draws_used: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "trained_corr": _num(self.trained_corr),
            "null_corr": _num(self.null_corr),
            "p_value": _opt(self.p_value),
            "seeds": self.seeds,
            "constant": self.constant,
            "seed_corrs": [_num(c) for c in self.seed_corrs],
            "min_p": _num(self.min_p),
            "absolute_corr": _num(self.absolute_corr),
            "absolute_p": _opt(self.absolute_p),
            "draws_used": self.draws_used,
        }


@dataclass(frozen=True)
class Verdict:
    """One check's outcome under the rule of docs/conventions.md.

    ``kind``: ``"faithfulness"`` (does what the explanation points at matter to the model?) or ``"sanity"``
    (does it depend on the model at all? necessary, never evidence of faithfulness). ``passed``: True / False,
    None when the check is not testable on this input (``p_value`` None then). ``effect``: the check's effect
    size (see its result); ``sentence`` says it in words with the numbers."""

    check: str
    passed: bool | None
    sentence: str
    kind: str = "faithfulness"
    p_value: float | None = None
    effect: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "kind": self.kind,
            "passed": self.passed,
            "p_value": _opt(self.p_value),
            "effect": _opt(self.effect),
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class FaithfulnessResult:
    """Everything :meth:`Faithfulness.evaluate` measured for one clip; a check left out is None (or empty).
    ``random_logit_tests``: the target's explanation against those of ``random_logit_classes``, distinct other
    classes drawn uniformly at random without replacement, in the order compared (each test uses the first
    ``draws_used``); ``random_logit_class``: the first of them (-1: none), kept for readers of older results."""

    target: int
    channel_ablation: ChannelAblation | None
    frame_deletion: PerturbationCurve | None
    frame_insertion: PerturbationCurve | None
    spatial_deletion: PerturbationCurve | None
    randomisation: tuple[RandomisationStep, ...]
    verdicts: tuple[Verdict, ...]
    randomisation_tests: tuple[RandomisationTest, ...] = ()
    random_logit_tests: tuple[RandomisationTest, ...] = ()
    random_logit_class: int = -1
    random_logit_classes: tuple[int, ...] = ()

    def verdict(self, check: str) -> Verdict | None:
        """The verdict of ``check`` (e.g. ``"channel_ablation"``), None when it was not run."""
        return next((v for v in self.verdicts if v.check == check), None)

    def to_json(self) -> dict[str, Any]:
        """The ``faithfulness`` object of a ``predictions.json`` entry."""

        def part(x: Any) -> Any:
            return None if x is None else x.to_json()

        return {
            "target": self.target,
            "channel_ablation": part(self.channel_ablation),
            "frame_deletion": part(self.frame_deletion),
            "frame_insertion": part(self.frame_insertion),
            "spatial_deletion": part(self.spatial_deletion),
            "randomisation": [s.to_json() for s in self.randomisation],
            "randomisation_tests": [t.to_json() for t in self.randomisation_tests],
            "random_logit_class": self.random_logit_class,
            "random_logit_classes": list(self.random_logit_classes),
            "random_logit_tests": [t.to_json() for t in self.random_logit_tests],
            "verdicts": [v.to_json() for v in self.verdicts],
        }
