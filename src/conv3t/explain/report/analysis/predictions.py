"""Each clip's explained prediction (channel attribution, Grad-CAM, frame importance;
:func:`conv3t.explain.attribution.explain_predictions`) and the faithfulness checks of that explanation
(:class:`conv3t.explain.faithfulness.Faithfulness`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from conv3t.explain.attribution import PredictionExplanation, explain_predictions
from conv3t.explain.faithfulness import Explanation, Faithfulness, FaithfulnessResult, conv3t_explainer
from conv3t.explain.frame_attribution import DEFAULT_FRAME_ATTRIBUTION, frame_attribution
from conv3t.explain.measured import reading_text
from conv3t.explain.report.analysis.inputs import ReportClip
from conv3t.explain.report.options import ReportOptions
from conv3t.explain.report.progress import StepCounter
from conv3t.exported import ModelInfo
from conv3t.nn import Conv3T

__all__ = ["attributed_layers", "check_explanations", "explain_clips", "explanation_of"]


def attributed_layers(model: nn.Module) -> list[str]:
    """Every layer with a temporal extent (Conv3T / Conv3d with depth > 1), in model order."""
    return [
        name for name, m in model.named_modules() if isinstance(m, (Conv3T, torch.nn.Conv3d)) and m.kernel_size[0] > 1
    ]


def explain_clips(
    model: nn.Module, clips: Sequence[ReportClip], info: ModelInfo, readings: pd.DataFrame | None
) -> tuple[PredictionExplanation, ...]:
    """Each clip's explanation, its true label recorded, with the measured readings of the credited channels."""
    records = explain_predictions(
        model,
        torch.stack([c.clip for c in clips]),
        [c.name for c in clips],
        info.classes,
        attributed_layers(model),
        readings=readings,
        reading_text=reading_text if readings is not None else None,
        frame_attribution=(
            DEFAULT_FRAME_ATTRIBUTION,
            functools.partial(frame_attribution, method=DEFAULT_FRAME_ATTRIBUTION),
        ),
        labels=[c.label for c in clips],
    )
    return tuple(records)


def explanation_of(record: PredictionExplanation) -> Explanation:
    """A prediction record's explanation as the checks take it (conv3t's method, its Grad-CAM layer recorded so
    that the checks can rebuild it)."""
    channels: dict[str, tuple[int, ...]] = {}
    for c in record.channels:
        channels[str(c["layer"])] = (*channels.get(str(c["layer"]), ()), int(c["channel"]))
    return Explanation(
        channels=channels,
        frame_importance=torch.tensor(record.frame_importance),
        gradcam=None if record.cam is None else record.cam.detach().cpu(),
        gradcam_layer=record.cam_layer or None,
        method=f"conv3t/{record.frame_method}/5",
    )


def check_explanations(
    model: nn.Module,
    clips: Sequence[ReportClip],
    records: Sequence[PredictionExplanation],
    info: ModelInfo,
    options: ReportOptions,
    progress: StepCounter,
) -> tuple[FaithfulnessResult, ...]:
    """Check every clip's explanation; one progress step per clip."""
    classes = list(info.classes)
    layers = attributed_layers(model)
    results = []
    for i, (record, clip) in enumerate(zip(records, clips)):
        with progress.step(f"faithfulness: clip {i + 1} of {len(records)}"):
            check = Faithfulness(
                model,
                draws=options.faithfulness_draws,
                seed=options.seed,
                batch_size=8,
                classes=classes,
                explainer=conv3t_explainer(layers, record.cam_layer or None, frame_method=record.frame_method),
                pixel_std=info.std,
            )
            results.append(check.evaluate(clip.clip, record.target, explanation_of(record)))
    return tuple(results)
