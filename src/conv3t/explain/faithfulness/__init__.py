"""Faithfulness and sanity checks of a video classifier's prediction explanations.

``Faithfulness(model).evaluate(clip, target, explanation)`` checks one clip's explanation: do the credited
channels, the important frames and the Grad-CAM's pixels matter to the model more than random ones, and does
the explanation change when the model's weights are randomised? Rules and definitions: docs/conventions.md,
"Faithfulness".
"""

from conv3t.explain.faithfulness.evaluate import Faithfulness, eval_mode
from conv3t.explain.faithfulness.explainers import conv3t_explainer, explain_clip, temporal_layers
from conv3t.explain.faithfulness.perturb import FRAME_RULE, SPATIAL_RULE, road_impute
from conv3t.explain.faithfulness.randomise import Explainer, default_layer_groups, spearman
from conv3t.explain.faithfulness.results import (
    ChannelAblation,
    Explanation,
    FaithfulnessResult,
    PerturbationCurve,
    RandomisationStep,
    Verdict,
)
from conv3t.explain.faithfulness.verdicts import MAX_RANDOMISED_CORR, Z

__all__ = [
    "FRAME_RULE",
    "MAX_RANDOMISED_CORR",
    "SPATIAL_RULE",
    "ChannelAblation",
    "Explainer",
    "Explanation",
    "Faithfulness",
    "FaithfulnessResult",
    "PerturbationCurve",
    "RandomisationStep",
    "Verdict",
    "Z",
    "conv3t_explainer",
    "default_layer_groups",
    "eval_mode",
    "explain_clip",
    "road_impute",
    "spearman",
    "temporal_layers",
]
