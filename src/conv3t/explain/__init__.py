"""Explaining 3TConv networks: temporal parameters, statistics, plots, filters, sentences, rankings.

Reads models (``conv3t.models``) and exported weights; never imports the trainer.
"""

from conv3t.explain.describe import channel_summary, describe_channel, describe_channels, rank_channels
from conv3t.explain.parameters import (
    DERIVED_COLUMNS,
    PARAMETER_COLUMNS,
    conv3t_layers,
    layer_geometry,
    temporal_parameters,
)
from conv3t.explain.stats import (
    STATISTIC_PARAMETERS,
    format_statistics,
    statistics_latex,
    statistics_markdown,
    summary_statistics,
)

__all__ = [
    "DERIVED_COLUMNS",
    "PARAMETER_COLUMNS",
    "STATISTIC_PARAMETERS",
    "channel_summary",
    "conv3t_layers",
    "describe_channel",
    "describe_channels",
    "format_statistics",
    "layer_geometry",
    "rank_channels",
    "statistics_latex",
    "statistics_markdown",
    "summary_statistics",
    "temporal_parameters",
]
