"""Explaining 3TConv networks: temporal parameters, statistics, plots, filters, sentences, rankings,
gradient saliency, activation maximisation and the HTML report.

Reads models (``conv3t.models``) and exported weights; never imports the trainer.
"""

from conv3t.explain.actmax import ActivationMaximization, ActMaxResult
from conv3t.explain.describe import (
    SUMMARY_COLUMNS,
    channel_summary,
    describe_channel,
    describe_channels,
    rank_channels,
)
from conv3t.explain.filters import (
    filter_gif_frames,
    filter_kernel,
    filter_layer,
    filter_slices,
    filter_strip,
    plot_filter_slices,
    save_filter_gif,
)
from conv3t.explain.parameters import (
    DERIVED_COLUMNS,
    PARAMETER_COLUMNS,
    conv3t_layers,
    layer_geometry,
    temporal_parameters,
)
from conv3t.explain.plots import (
    distribution_values,
    plot_channel,
    plot_distribution_grid,
    plot_distributions,
    save_figure,
)
from conv3t.explain.report import build_comparison, build_report, load_video_clip
from conv3t.explain.saliency import ChannelSaliency, PeakFrame, channel_selector, overlay, saliency_map
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
    "SUMMARY_COLUMNS",
    "ActMaxResult",
    "ActivationMaximization",
    "ChannelSaliency",
    "PeakFrame",
    "build_comparison",
    "build_report",
    "channel_selector",
    "channel_summary",
    "conv3t_layers",
    "describe_channel",
    "describe_channels",
    "distribution_values",
    "filter_gif_frames",
    "filter_kernel",
    "filter_layer",
    "filter_slices",
    "filter_strip",
    "format_statistics",
    "layer_geometry",
    "load_video_clip",
    "overlay",
    "plot_channel",
    "plot_distribution_grid",
    "plot_distributions",
    "plot_filter_slices",
    "rank_channels",
    "saliency_map",
    "save_figure",
    "save_filter_gif",
    "statistics_latex",
    "statistics_markdown",
    "summary_statistics",
    "temporal_parameters",
]
