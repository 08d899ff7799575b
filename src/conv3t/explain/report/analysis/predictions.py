"""Each clip's explained prediction and the faithfulness checks of that explanation.

The explanation is conv3t's one explanation of a prediction, :func:`conv3t.explain.methods.explain_clip`
(channel attribution, Grad-CAM, frame attribution, as an :class:`~conv3t.explain.faithfulness.Explanation`);
the report adds what a reader needs beside it (the most probable classes, the credited channels' measured
readings, the clip's label, the input x gradient shares as a labelled comparison) as a
:class:`PredictionExplanation`, and checks that same ``Explanation``
(:class:`conv3t.explain.faithfulness.Faithfulness`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from conv3t.explain.faithfulness import Explanation, Faithfulness, FaithfulnessResult, conv3t_explainer, explain_clip
from conv3t.explain.measured import reading_text
from conv3t.explain.methods.attribution import frame_importance
from conv3t.explain.methods.frame_attribution import DEFAULT_FRAME_ATTRIBUTION
from conv3t.explain.methods.layers import temporal_layers
from conv3t.explain.report.analysis.inputs import ReportClip
from conv3t.explain.report.options import ReportOptions
from conv3t.explain.report.progress import StepCounter
from conv3t.exported import ModelInfo
from conv3t.models.outputs import logits
from conv3t.runtime import model_device

__all__ = ["PredictionExplanation", "check_explanations", "explain_clips", "explain_prediction", "explain_predictions"]

INPUT_X_GRADIENT = "input_x_gradient"


@dataclass(frozen=True)
class PredictionExplanation:
    """One clip's explained prediction (the record of ``predictions.json`` plus what the page draws).

    Attributes:
        video: the clip's name.
        top: ``[{"class": str, "probability": float}, ...]``, most probable first.
        target: the logit index of the top class, the class explained (the report checks this index; a class
            name need not identify it).
        channels: ``[{"layer", "channel", "attribution", "reading"}, ...]``: the channels the explanation credits
            (largest positive attribution to the top class, logit units), largest first; ``reading`` is the
            channel's measured motion reading in words ("" when not measured).
        explanation: conv3t's explanation (:func:`conv3t.explain.methods.explain_clip`), the one the
            faithfulness checks take.
        label: the clip's true class when known.
        frame_method: the frame attribution of ``explanation``: ``"input_x_gradient"`` shares summing to 1, or
            a signed attribution against the mean frame in logit units
            (:mod:`conv3t.explain.methods.frame_attribution`).
        frame_comparison: the input x gradient shares, kept beside another ``frame_method`` as a labelled
            comparison (None when ``frame_method`` is input x gradient).
    """

    video: str
    top: list[dict[str, Any]]
    target: int
    channels: list[dict[str, Any]]
    explanation: Explanation
    label: str | None = None
    frame_method: str = INPUT_X_GRADIENT
    frame_comparison: list[float] | None = None

    @property
    def frame_importance(self) -> list[float]:
        """``T`` values, one per frame (``frame_method``)."""
        values = self.explanation.frame_importance
        return [] if values is None else [float(v) for v in values]

    @property
    def cam(self) -> Tensor | None:
        """``(T, H, W)`` Grad-CAM in [0, 1] (not written to JSON)."""
        return self.explanation.gradcam

    @property
    def cam_layer(self) -> str:
        return self.explanation.gradcam_layer or ""

    def to_json(self) -> dict[str, Any]:
        """The ``predictions.json`` record: ``video``, ``top``, ``target``, ``channels``, ``frame_importance``,
        ``frame_method`` and, beside another method, ``frame_importance_input_x_gradient``."""
        out = {
            "video": self.video,
            "top": self.top,
            "target": self.target,
            "channels": self.channels,
            "frame_importance": self.frame_importance,
            "frame_method": self.frame_method,
        }
        if self.frame_comparison is not None:
            out["frame_importance_input_x_gradient"] = self.frame_comparison
        return out


def explain_prediction(
    model: nn.Module,
    clip: Tensor,
    name: str,
    classes: Sequence[str],
    *,
    layers: Sequence[str] | None = None,
    readings: Mapping[tuple[str, int], str] | None = None,
    label: str | None = None,
    top_classes: int = 3,
    top_channels: int = 5,
    frame_method: str = DEFAULT_FRAME_ATTRIBUTION,
) -> PredictionExplanation:
    """Explain the model's top prediction on one clip ``(C, T, H, W)`` (normalised model input).

    Args:
        model: the network (in eval mode); ``classes``: class names, index = logit position.
        layers: layers whose channels are attributed (default :func:`conv3t.explain.methods.temporal_layers`).
        readings: ``(layer, channel) -> reading in words`` of the channels measured (None: not measured).
        top_classes, top_channels: how many classes to list and channels to credit; ``label``: the clip's true
            class; ``frame_method``: the frame attribution
            (:data:`conv3t.explain.methods.frame_attribution.FRAME_ATTRIBUTIONS`).
    """
    if clip.ndim != 4:
        raise ValueError(f"clip must be (C, T, H, W), got shape {tuple(clip.shape)}")
    x = clip[None]
    with torch.no_grad():
        probs = torch.softmax(logits(model(x.to(model_device(model)))).float(), dim=1).cpu()[0]
    target = int(probs.argmax())
    explanation = explain_clip(
        model, x, target, layers=layers or temporal_layers(model), top_channels=top_channels, frame_method=frame_method
    )
    p, idx = probs.topk(min(top_classes, probs.shape[0]))
    top = [{"class": _name(classes, int(j)), "probability": float(q)} for q, j in zip(p, idx)]
    # the credited channels, largest attribution first (ties in model order, as the explainer ranked them)
    scores = explanation.channel_scores or {}
    credited = sorted(
        (
            (float(a[c]), layer, c)
            for layer, a in scores.items()
            for c in range(a.shape[0])
            if c in explanation.channels.get(layer, ())
        ),
        key=lambda item: -item[0],
    )
    lookup = readings or {}
    channels = [
        {"layer": layer, "channel": c, "attribution": value, "reading": lookup.get((layer, c), "")}
        for value, layer, c in credited
    ]
    comparison = None
    if frame_method != INPUT_X_GRADIENT:
        comparison = [float(v) for v in frame_importance(model, x, torch.tensor([target]))[0]]
    return PredictionExplanation(str(name), top, target, channels, explanation, label, frame_method, comparison)


def explain_predictions(
    model: nn.Module,
    clips: Tensor,
    names: Sequence[str],
    classes: Sequence[str],
    layers: Sequence[str] | None = None,
    readings: pd.DataFrame | None = None,
    reading_text: Callable[[pd.Series], str] | None = None,
    labels: Sequence[str | None] | None = None,
    top_channels: int = 5,
    frame_method: str = DEFAULT_FRAME_ATTRIBUTION,
) -> list[PredictionExplanation]:
    """:func:`explain_prediction` of each clip of ``clips (N, C, T, H, W)``, one at a time (the attribution holds
    every attributed layer's activations and gradients; a batch would hold them for all clips at once).

    ``readings``: :func:`conv3t.verify.readings.channel_readings` rows (``layer``, ``channel`` plus readings),
    turned into words by ``reading_text``; ``labels``: each clip's true class when known (recorded, not used).
    """
    if clips.ndim != 5:
        raise ValueError(f"clips must be (N, C, T, H, W), got shape {tuple(clips.shape)}")
    if len(names) != clips.shape[0]:
        raise ValueError(f"got {len(names)} names for {clips.shape[0]} clips")
    labels = [None] * len(names) if labels is None else list(labels)
    if len(labels) != len(names):
        raise ValueError(f"got {len(labels)} labels for {len(names)} clips")
    lookup = {}
    if readings is not None and reading_text is not None:
        lookup = {(str(r["layer"]), int(r["channel"])): reading_text(r) for _, r in readings.iterrows()}
    layers = list(layers) if layers else temporal_layers(model)
    return [
        explain_prediction(
            model,
            clips[i],
            name,
            classes,
            layers=layers,
            readings=lookup,
            label=labels[i],
            top_channels=top_channels,
            frame_method=frame_method,
        )
        for i, name in enumerate(names)
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
        readings=readings,
        reading_text=reading_text if readings is not None else None,
        labels=[c.label for c in clips],
    )
    return tuple(records)


def check_explanations(
    model: nn.Module,
    clips: Sequence[ReportClip],
    records: Sequence[PredictionExplanation],
    info: ModelInfo,
    options: ReportOptions,
    progress: StepCounter,
) -> tuple[FaithfulnessResult, ...]:
    """Check every clip's explanation (the ``Explanation`` it was shown with); one progress step per clip."""
    classes = list(info.classes)
    layers = temporal_layers(model)
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
            results.append(check.evaluate(clip.clip, record.target, record.explanation))
    return tuple(results)


def _name(classes: Sequence[str], k: int) -> str:
    return classes[k] if 0 <= k < len(classes) else str(k)
