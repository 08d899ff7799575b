"""Explaining 3TConv networks: plots, filters, sentences, rankings, gradient saliency, activation
maximisation and the HTML pages (:mod:`conv3t.explain.report`).

Reads models and exported weights, the temporal parameters through :mod:`conv3t.readout` and measurements
from :mod:`conv3t.verify`; never imports the trainer.
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
from conv3t.explain.plots import (
    distribution_values,
    plot_channel,
    plot_distribution_grid,
    plot_distributions,
    save_figure,
)
from conv3t.explain.saliency import ChannelSaliency, PeakFrame, channel_selector, overlay, saliency_map
from conv3t.nn import conv3t_layers

# the readout (tables, units, statistics) sits below verify and explain; its names stay importable from here
from conv3t.readout import (
    DERIVED_COLUMNS,
    PARAMETER_COLUMNS,
    STATISTIC_PARAMETERS,
    format_statistics,
    layer_geometry,
    statistics_latex,
    statistics_markdown,
    summary_statistics,
    temporal_parameters,
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

# The pages load the data package (and with it Lightning, seconds): `from conv3t.explain import
# temporal_parameters` should not pay for that, so the report's names are imported when first asked for.
_REPORT_NAMES = ("build_comparison", "build_report", "load_video_clip")


def __getattr__(name: str) -> object:
    if name in _REPORT_NAMES:
        from conv3t.explain import report

        return getattr(report, name)
    raise AttributeError(f"module 'conv3t.explain' has no attribute {name!r}")
