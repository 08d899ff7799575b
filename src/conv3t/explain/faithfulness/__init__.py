"""Faithfulness and sanity checks of a video classifier's prediction explanations.

``Faithfulness(model).evaluate(clip, target, explanation)`` checks one clip's explanation: do the credited
channels, the important frames and the Grad-CAM's pixels matter to the model more than random ones (rank
p-values, exact where every random explanation can be enumerated), and does the explanation change when the
model's weights are randomised (a sanity check, never evidence of faithfulness)? ``Faithfulness.summarise``
tests each check over many clips. Rules and definitions: docs/conventions.md, "Faithfulness".
"""

from conv3t.explain.faithfulness.evaluate import Faithfulness, eval_mode
from conv3t.explain.faithfulness.perturb import FRAME_RULE, SPATIAL_RULE, road_impute, road_solve
from conv3t.explain.faithfulness.randomise import default_layer_groups, spearman
from conv3t.explain.faithfulness.results import (
    ChannelAblation,
    FaithfulnessResult,
    PerturbationCurve,
    RandomisationStep,
    RandomisationTest,
    Verdict,
)
from conv3t.explain.faithfulness.stats import ALPHA, RankTest
from conv3t.explain.faithfulness.summary import CheckSummary, FaithfulnessSummary, summarise

# The explanation being checked is a method's output (explain/methods); named here too, as the checks' input.
from conv3t.explain.methods.explanation import Explainer, Explanation, conv3t_explainer, explain_clip
from conv3t.explain.methods.layers import temporal_layers

__all__ = [
    "ALPHA",
    "FRAME_RULE",
    "SPATIAL_RULE",
    "ChannelAblation",
    "CheckSummary",
    "Explainer",
    "Explanation",
    "Faithfulness",
    "FaithfulnessResult",
    "FaithfulnessSummary",
    "PerturbationCurve",
    "RandomisationStep",
    "RandomisationTest",
    "RankTest",
    "Verdict",
    "conv3t_explainer",
    "default_layer_groups",
    "eval_mode",
    "explain_clip",
    "road_impute",
    "road_solve",
    "spearman",
    "summarise",
    "temporal_layers",
]
