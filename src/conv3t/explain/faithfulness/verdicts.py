"""The verdicts of the faithfulness and sanity checks, by rules fixed before any model was looked at
(docs/conventions.md, "Faithfulness"), each said in one sentence with its numbers.

A faithfulness check passes when its rank p-value is at most :data:`ALPHA`; it is not testable (``passed`` None)
when no explanation could reach ``ALPHA`` on this clip. A sanity check (randomisation) fails when the
explanation's correlation with those of randomised models (or of other classes) is both above that of unrelated
explanations and positive in every draw (:mod:`~conv3t.explain.faithfulness.sanity_stats`, p <= ALPHA): it
survives the destruction of what the model learned. It is not testable when ``K`` draws cannot reach ALPHA
(``2^-K > ALPHA``, fewer than 5). The signed scores decide; the correlation of their absolute values is said
beside them. The sentences say what was measured (a consistent correlation over the draws), not more: a partly
dependent explanation keeps a positive correlation too.
"""

from __future__ import annotations

import math

from conv3t.explain.faithfulness.results import ChannelAblation, PerturbationCurve, RandomisationTest, Verdict
from conv3t.explain.faithfulness.stats import ALPHA, RankTest

__all__ = ["ALPHA", "ablation_verdict", "curve_verdict", "random_logit_verdicts", "randomisation_verdicts"]


def _p(test: RankTest) -> str:
    how = f"exact over all {test.draws} random" if test.exact else f"{test.draws} random draws"
    return f"p = {test.p_value:.3g} ({how})"


def _judge(test: RankTest | None) -> tuple[bool | None, float | None]:
    if test is None or not test.testable:
        return None, None
    return test.p_value <= ALPHA, test.p_value


def _untestable(test: RankTest | None) -> str:
    if test is None:
        return (
            "not testable: the explanation does not say at which resolution its map was made "
            "(Explanation.gradcam_layer or gradcam_shape), so no matched random maps can be drawn."
        )
    return (
        f"not testable here: even the best possible explanation would reach only p = {test.min_p:.3g} > {ALPHA:g}"
        + (" (the model does not respond to this perturbation)." if test.min_p >= 1 else ".")
    )


def ablation_verdict(result: ChannelAblation, label: str) -> Verdict:
    """ "The credited channels matter" when the rank p-value of ``p_after_credited`` against random channel sets
    is at most ALPHA."""
    r = result
    passed, p = _judge(r.test)
    plural = "s" if r.k != 1 else ""
    verb = "drops" if r.p_after_credited < r.p_before else "changes"
    head = (
        f"removing the {r.k} credited channel{plural} {verb} p({label}) from {r.p_before:.2f} to "
        f"{r.p_after_credited:.2f}; {r.k} random channel{plural} of the same layers: "
        f"{r.p_after_random_mean:.2f} ± {r.p_after_random_std:.2f}"
    )
    if passed is None:
        tail = ": " + _untestable(r.test)
    else:
        tail = f", {_p(r.test)}: " + (
            "the credited channels matter." if passed else "the credited channels matter no more than random ones."
        )
    # the drop beyond the random sets' mean, as a share of the prediction
    effect = (r.p_after_random_mean - r.p_after_credited) / r.p_before if r.p_before > 0 else None
    return Verdict("channel_ablation", passed, head + tail, "faithfulness", p, effect)


_CURVES = {
    "frame_deletion": ("deleting frames most important first", "frame importance", "area under p({})"),
    "frame_insertion": ("inserting frames most important first", "frame importance", "area under p({})"),
    "spatial_deletion": (
        "removing pixels in Grad-CAM order",
        "Grad-CAM",
        "area under p({}) least minus most relevant first",
    ),
}


def curve_verdict(check: str, curve: PerturbationCurve, label: str) -> Verdict:
    """Passes when the rank p-value of the curve's statistic (frames: the area; pixels: LeRF - MoRF area)
    against random orders (maps) is at most ALPHA."""
    what, source, stat = _CURVES[check]
    test = curve.test
    passed, p = _judge(test)
    head = what if test is None else f"{what}: {stat.format(label)} {test.observed:.3f}"
    if test is not None:
        head += f"; random: {test.random_mean:.3f} ± {test.random_std:.3f}"
        if test.best is not None:
            head += f", best possible {test.best:.3f}"
    if passed is None:
        tail = ": " + _untestable(test)
    else:
        tail = f", {_p(test)}: " + (  # type: ignore[arg-type]
            f"the {source} ranks better than chance." if passed else f"the {source} ranks no better than chance."
        )
    return Verdict(check, passed, head + tail, "faithfulness", p, curve.effect)


_NAMES = {"gradcam": "the Grad-CAM", "frame_importance": "the frame importance", "channels": "the channel attribution"}


def randomisation_verdicts(tests: tuple[RandomisationTest, ...]) -> list[Verdict]:
    """One sanity verdict per explanation kind tested (module notes)."""
    verdicts = []
    for t in tests:
        family, _, kind = t.kind.rpartition("/")
        if family:
            verdicts.append(_family_verdict(t, family, kind))
            continue
        check, name = f"randomisation_{t.kind}", _NAMES[t.kind]
        if t.p_value is None or not math.isfinite(t.trained_corr):
            sentence = (
                f"{name} is constant on the trained model or on {t.constant} of the {t.seeds} randomised ones: "
                "undefined, the randomisation cannot say whether it depends on the learned weights."
            )
            verdicts.append(Verdict(check, None, sentence, "sanity"))
            continue
        head = (
            f"with every layer group randomised {name} keeps a mean rank correlation of {t.trained_corr:.2f} with "
            f"the trained model's over {_draws(t, 'seed', 'seeds')} (two randomised models: {_null(t)}"
            + (f"; absolute values: {t.absolute_corr:.2f}" if _signed(t) else "")
            + f"), p = {t.p_value:.3g}: "
        )
        if t.min_p > ALPHA:
            verdicts.append(
                Verdict(check, None, head + _not_testable(t, "seed", "seeds"), "sanity", None, t.trained_corr)
            )
            continue
        passed = t.p_value > ALPHA
        tail = (
            "it depends on the learned weights."
            if passed
            else "it survives the randomisation, so it explains little about what the model learned."
        )
        verdicts.append(Verdict(check, passed, head + tail, "sanity", t.p_value, t.trained_corr))
    return verdicts


def _draws(t: RandomisationTest, one: str, many: str) -> str:
    """``"5 seeds"``, or ``"2 of 5 seeds (stopped at the first non-positive correlation)"``."""
    used = t.draws_used or t.seeds  # 0: a result from before early stopping, which used every draw
    if used >= t.seeds:
        return f"{t.seeds} {one if t.seeds == 1 else many}"
    return f"{used} of {t.seeds} {many} (stopped at the first non-positive correlation)"


def _null(t: RandomisationTest) -> str:
    return f"{t.null_corr:.2f}" if math.isfinite(t.null_corr) else "not measured"


def _not_testable(t: RandomisationTest, one: str, many: str) -> str:
    what = one if t.seeds == 1 else many
    return f"not testable with {t.seeds} {what} (p cannot go below {t.min_p:.3g}; 5 reach {ALPHA:g})."


def _signed(t: RandomisationTest) -> bool:
    """True when the absolute variant differs from the signed one (some score was negative)."""
    return math.isfinite(t.absolute_corr) and abs(t.absolute_corr - t.trained_corr) > 1e-9


def random_logit_verdicts(tests: tuple[RandomisationTest, ...], label: str, others: list[str]) -> list[Verdict]:
    """Class specificity (a sanity check): the explanation of ``label`` must not be consistently like those of
    ``others``, the other classes drawn in the order compared (the randomisation tests' rule)."""
    verdicts = []
    for t in tests:
        check, name = f"random_logit_{t.kind}", _NAMES[t.kind]
        compared = others[: t.draws_used or t.seeds]
        listed = ", ".join(compared)
        if t.p_value is None or not math.isfinite(t.trained_corr):
            sentence = f"{name} is constant for {label} or for one of {listed}: class specificity undefined."
            verdicts.append(Verdict(check, None, sentence, "sanity"))
            continue
        head = (
            f"{name} of {label} keeps a mean rank correlation of {t.trained_corr:.2f} with those of "
            f"{_draws(t, 'other class', 'other classes')} drawn at random ({listed}), p = {t.p_value:.3g}: "
        )
        if t.min_p > ALPHA:
            verdicts.append(
                Verdict(
                    check, None, head + _not_testable(t, "other class", "other classes"), "sanity", None, t.trained_corr
                )
            )
            continue
        passed = t.p_value > ALPHA
        tail = "it is specific to the class." if passed else "it is much the same whatever class is explained."
        verdicts.append(Verdict(check, passed, head + tail, "sanity", t.p_value, t.trained_corr))
    return verdicts


_FAMILY_NAMES = {"filters_2d": "2D filters", "temporal": "temporal parameters (the learned motion)"}


def _family_verdict(t: RandomisationTest, family: str, kind: str) -> Verdict:
    """3T networks: the explanation with one parameter family of every Conv3T layer redrawn (module notes)."""
    check, name, what = f"family_{family}_{kind}", _NAMES[kind], _FAMILY_NAMES[family]
    if t.p_value is None or not math.isfinite(t.trained_corr):
        return Verdict(check, None, f"{name} is constant with the {what} randomised: undefined.", "sanity")
    head = (
        f"with only the {what} of every 3T layer randomised {name} keeps a mean rank correlation of "
        f"{t.trained_corr:.2f} with the trained model's over {_draws(t, 'draw', 'draws')}, p = {t.p_value:.3g}: "
    )
    if t.min_p > ALPHA:
        return Verdict(check, None, head + _not_testable(t, "draw", "draws"), "sanity", None, t.trained_corr)
    passed = t.p_value > ALPHA
    tail = (
        f"it changes with the {what}."
        if passed
        else f"the correlation is consistent: much of it is set by the other parameters, not the {what}."
    )
    return Verdict(check, passed, head + tail, "sanity", t.p_value, t.trained_corr)
