"""Explaining 3TConv networks: plots, filters, sentences, rankings, gradient saliency, activation
maximisation (the methods: :mod:`conv3t.explain.methods`), their checks (:mod:`conv3t.explain.faithfulness`)
and the HTML pages (:mod:`conv3t.explain.report`).

Reads models and exported weights, the temporal parameters through :mod:`conv3t.readout` and measurements
from :mod:`conv3t.verify`; never imports the trainer.

Every name below is imported when first asked for (PEP 562): ``from conv3t.explain import rank_channels`` loads
the describing module only, and ``conv3t explain``'s options (:mod:`conv3t.explain.report.options`) can be read
at the command line's start without loading matplotlib, captum or the data package.
"""

from __future__ import annotations

from conv3t.lazy import lazy_exports

#: module -> the names it gives this package
_MODULES: dict[str, tuple[str, ...]] = {
    "conv3t.explain.methods.actmax": (
        "ActivationMaximization",
        "ActMaxResult",
    ),
    "conv3t.explain.describe": (
        "SUMMARY_COLUMNS",
        "channel_summary",
        "describe_channel",
        "describe_channels",
        "rank_channels",
    ),
    "conv3t.explain.methods.filters": (
        "filter_gif_frames",
        "filter_kernel",
        "filter_layer",
        "filter_slices",
        "filter_strip",
        "plot_filter_slices",
    ),
    "conv3t.explain.plots": (
        "distribution_values",
        "plot_channel",
        "plot_distribution_grid",
        "plot_distributions",
        "save_figure",
        "save_filter_gif",
        "save_gif",
    ),
    "conv3t.explain.methods.saliency": (
        "ChannelSaliency",
        "PeakFrame",
        "channel_selector",
        "overlay",
        "saliency_map",
    ),
    "conv3t.explain.methods.explanation": ("explain_clip",),
    "conv3t.explain.methods.layers": ("temporal_layers",),
    "conv3t.models.outputs": ("logits",),
    "conv3t.nn": ("conv3t_layers",),
    "conv3t.readout": (
        "DERIVED_COLUMNS",
        "PARAMETER_COLUMNS",
        "STATISTIC_PARAMETERS",
        "format_statistics",
        "layer_geometry",
        "statistics_latex",
        "statistics_markdown",
        "summary_statistics",
        "temporal_parameters",
    ),
    # the pages load the data package (and with it Lightning, seconds)
    "conv3t.explain.report": ("build_comparison", "build_report", "load_video_clip"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


#: every name is lazy, so the public list is the lazy map's
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
