"""The report's analysis: :func:`analyse` computes everything the report says about a model, once, as one frozen
:class:`ReportAnalysis`. It imports the explanation methods, the faithfulness checks, verify and readout, never
the renderer (:mod:`conv3t.explain.report.render`) or the data files (:mod:`conv3t.explain.report.artifacts`).
"""

from conv3t.explain.report.analysis.channels import ActMaxView, ChannelViews, SaliencyView, channel_views
from conv3t.explain.report.analysis.core import ChosenChannel, Need, ReportAnalysis, analyse, check_selection
from conv3t.explain.report.analysis.inputs import ReportClip, dataset_clips, predict, read_clips
from conv3t.explain.report.analysis.layers import choose_channels, kernel_variation, select_layers
from conv3t.explain.report.analysis.predictions import PredictionExplanation, explain_prediction, explain_predictions
from conv3t.explain.report.analysis.verification import Measured, measured_verification

__all__ = [
    "ActMaxView",
    "ChannelViews",
    "ChosenChannel",
    "Measured",
    "Need",
    "PredictionExplanation",
    "ReportAnalysis",
    "ReportClip",
    "SaliencyView",
    "analyse",
    "channel_views",
    "check_selection",
    "choose_channels",
    "dataset_clips",
    "explain_prediction",
    "explain_predictions",
    "kernel_variation",
    "measured_verification",
    "predict",
    "read_clips",
    "select_layers",
]
