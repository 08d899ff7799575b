"""The verdicts of the faithfulness checks, by rules fixed before any model was looked at
(docs/conventions.md, "Faithfulness"), each said in one sentence with its numbers."""

from __future__ import annotations

import math

from conv3t.explain.faithfulness.results import ChannelAblation, PerturbationCurve, RandomisationStep, Verdict

__all__ = [
    "MAX_RANDOMISED_CORR",
    "Z",
    "ablation_verdict",
    "curve_verdict",
    "randomisation_verdicts",
]

#: An explanation beats chance when its effect exceeds the random draws' mean by more than Z of their std.
Z = 2.0
#: With every layer group randomised, an explanation whose rank correlation with the trained model's is
#: still at least this has not changed: it does not depend on what the model learned.
MAX_RANDOMISED_CORR = 0.5


def ablation_verdict(result: ChannelAblation, label: str) -> Verdict:
    """ "credited channels matter" when ``p_after_credited < p_after_random_mean - Z * p_after_random_std``
    (the credited drop exceeds the random mean drop by more than Z std of the random drops)."""
    r = result
    passed = r.p_after_credited < r.p_after_random_mean - Z * r.p_after_random_std
    plural = "s" if r.k != 1 else ""
    verb = "drops" if r.p_after_credited < r.p_before else "changes"
    sentence = (
        f"removing the {r.k} credited channel{plural} {verb} p({label}) from {r.p_before:.2f} to "
        f"{r.p_after_credited:.2f}; {r.k} random channel{plural} of the same layers: "
        f"{r.p_after_random_mean:.2f} ± {r.p_after_random_std:.2f} ({r.draws} draws): "
        + ("the credited channels matter." if passed else "the credited channels matter no more than random ones.")
    )
    return Verdict("channel_ablation", bool(passed), sentence)


_CURVES = {
    "frame_deletion": ("deleting frames most important first", "frame importance", "lower"),
    "frame_insertion": ("inserting frames most important first", "frame importance", "higher"),
    "spatial_deletion": ("removing pixels in Grad-CAM order", "Grad-CAM", "lower"),
}


def curve_verdict(check: str, curve: PerturbationCurve, label: str) -> Verdict:
    """Deletion passes when ``auc < random_auc_mean - Z * random_auc_std``, insertion when
    ``auc > random_auc_mean + Z * random_auc_std`` (the order is better than random orders)."""
    what, source, better = _CURVES[check]
    margin = Z * curve.random_auc_std
    if better == "lower":
        passed = curve.auc < curve.random_auc_mean - margin
    else:
        passed = curve.auc > curve.random_auc_mean + margin
    sentence = (
        f"{what}: area under p({label}) {curve.auc:.2f}; random orders {curve.random_auc_mean:.2f} ± "
        f"{curve.random_auc_std:.2f} ({curve.draws} draws): "
        + (f"the {source} ranks better than chance." if passed else f"the {source} ranks no better than chance.")
    )
    return Verdict(check, bool(passed), sentence)


_KINDS = (
    ("gradcam", "gradcam_rank_corr", "the Grad-CAM"),
    ("frame_importance", "frame_importance_rank_corr", "the frame importance"),
    ("channels", "channel_rank_corr", "the channel attribution"),
)


def randomisation_verdicts(steps: tuple[RandomisationStep, ...]) -> list[Verdict]:
    """One verdict per explanation kind from the last cascade step (every group randomised): it *depends on
    the model* when its rank correlation is below ``MAX_RANDOMISED_CORR`` or undefined (it became constant);
    otherwise it stays the same when the model is destroyed, and the sentence says that it explains nothing."""
    if not steps:
        return []
    last = steps[-1]
    verdicts = []
    for kind, attr, name in _KINDS:
        corr = getattr(last, attr)
        check = f"randomisation_{kind}"
        groups = len(last.layers_randomised)
        if corr is None or (isinstance(corr, float) and math.isnan(corr)):
            first = [getattr(s, attr) for s in steps]
            if all(isinstance(c, float) and math.isnan(c) for c in first):
                verdicts.append(Verdict(check, None, f"{name} could not be compared (not computed or constant)."))
            else:
                verdicts.append(
                    Verdict(
                        check,
                        True,
                        f"with all {groups} layer groups randomised {name} becomes constant: it "
                        "depends on the learned weights.",
                    )
                )
            continue
        if corr < MAX_RANDOMISED_CORR:
            sentence = (
                f"with all {groups} layer groups randomised {name} keeps a rank correlation of {corr:.2f} with the "
                "trained model's: it depends on the learned weights."
            )
            verdicts.append(Verdict(check, True, sentence))
        else:
            sentence = (
                f"with all {groups} layer groups randomised {name} keeps a rank correlation of {corr:.2f} with the "
                "trained model's: it stays the same when the model is destroyed, so it explains nothing about what "
                "the model learned."
            )
            verdicts.append(Verdict(check, False, sentence))
    return verdicts
