"""Explanation methods, captum-style: functions and classes of a model and a clip that return tensors.

No file is read or written here and nothing of the report is imported; the report
(:mod:`conv3t.explain.report`) and the faithfulness checks (:mod:`conv3t.explain.faithfulness`) are built on
these. :func:`temporal_layers` is the one rule for which layers are temporal; :func:`logits` the one rule for a
model output's logits (:mod:`conv3t.models.outputs`, which training uses too).

Names are imported when first asked for (PEP 562), so that ``from conv3t.explain.methods import logits`` does
not load captum or matplotlib.
"""

from __future__ import annotations

from conv3t.lazy import lazy_exports

_MODULES: dict[str, tuple[str, ...]] = {
    "conv3t.explain.methods.actmax": ("ActivationMaximization", "ActMaxResult"),
    "conv3t.explain.methods.attribution": (
        "ChannelAttribution",
        "frame_importance",
        "grad_cam",
        "gradcam_layer",
        "logits_of",
    ),
    "conv3t.explain.methods.filters": (
        "filter_gif_frames",
        "filter_kernel",
        "filter_layer",
        "filter_slices",
        "filter_strip",
        "plot_filter_slices",
    ),
    "conv3t.explain.methods.explanation": ("Explainer", "Explanation", "conv3t_explainer", "explain_clip"),
    "conv3t.explain.methods.frame_attribution": (
        "DEFAULT_FRAME_ATTRIBUTION",
        "FRAME_ATTRIBUTIONS",
        "frame_attribution",
        "integrated_frame_attribution",
    ),
    "conv3t.explain.methods.layers": ("is_temporal", "temporal_layers"),
    "conv3t.explain.methods.saliency": (
        "ChannelSaliency",
        "PeakFrame",
        "channel_selector",
        "frozen_parameters",
        "overlay",
        "resolve_layer",
        "run_to_layer",
        "saliency_map",
    ),
    "conv3t.models.outputs": ("logits",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


#: every name is lazy, so the public list is the lazy map's
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
