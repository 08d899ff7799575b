"""Compute once, render after: everything the report says about a model, as one typed value.

:func:`analyse` reads the temporal parameters, measures the readings (the verification, stored in and reused
from the report folder, :mod:`conv3t.verify.store`), ranks the channels once
(:func:`conv3t.explain.rank_channels`, with the measured readings when there are any), chooses the channels
shown, reads the clips and explains each clip's prediction (attribution, Grad-CAM, frame importance) and checks
that explanation (:mod:`conv3t.explain.faithfulness`). The sections
(:data:`conv3t.explain.report.registry.SECTIONS`) only render the :class:`ReportAnalysis` it returns.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from conv3t.explain.attribution import PredictionExplanation, explain_predictions
from conv3t.explain.describe import rank_channels
from conv3t.explain.faithfulness import Faithfulness, FaithfulnessResult, conv3t_explainer
from conv3t.explain.frame_attribution import DEFAULT_FRAME_ATTRIBUTION, frame_attribution
from conv3t.explain.measured import reading_text
from conv3t.explain.report.context import ReportClip, ReportOptions, StepCounter
from conv3t.explain.report.inputs import predict, read_clips
from conv3t.explain.report.layers import choose_channels, select_layers
from conv3t.explain.report.sections.faithfulness import explanation_of
from conv3t.explain.report.sections.verification import measured_verification
from conv3t.exported import ExportedModel, ModelInfo
from conv3t.nn import Conv3T, conv3t_layers
from conv3t.readout import temporal_parameters
from conv3t.verify import VerificationResult
from conv3t.verify.budget import resolve_device
from conv3t.verify.readings import channel_readings, layer_verdicts

__all__ = ["ChosenChannel", "ReportAnalysis", "analyse", "attributed_layers"]


@dataclass(frozen=True)
class ChosenChannel:
    """A channel the report shows: its ranking ``score`` and ``sentence`` (3T models), and ``readings``:
    ``(label, sentence)`` pairs (what its parameters say, whether they agree with the measurement)."""

    layer: str
    channel: int
    score: float | None = None
    sentence: str | None = None
    readings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ReportAnalysis:
    """The report's computed content; sections are functions of it (nothing is added after :func:`analyse`).

    Attributes:
        model: the exported model, in eval mode on ``device``; ``info``: its ``model.json``; ``source``: the
            weights file it was loaded from.
        is_3t: the model has Conv3T layers.
        table: :func:`conv3t.readout.temporal_parameters` at the model's clip size (None for 3D models).
        verification: :func:`conv3t.verify.verify_model` of the model (None: not measured); ``readings`` and
            ``verdicts``: :func:`conv3t.verify.readings.channel_readings` (image mode) and ``layer_verdicts``.
        ranking: :func:`conv3t.explain.rank_channels` of ``table`` per layer, with the readings when measured.
        layers: the layers explained, in model order; ``channels``: the channels shown, layer by layer.
        clips: the input clips with the model's predictions; ``clip_source``: where they come from or why none.
        predictions: each clip's explanation (None: not explained); ``faithfulness``: its checks (None: not run).
        notes: how it was computed (reused results, batch sizes), shown at the top of the page.
    """

    model: nn.Module
    info: ModelInfo
    source: Path
    device: torch.device
    is_3t: bool
    table: pd.DataFrame | None
    verification: VerificationResult | None
    readings: pd.DataFrame | None
    verdicts: pd.DataFrame | None
    ranking: pd.DataFrame | None
    layers: tuple[str, ...]
    channels: tuple[ChosenChannel, ...]
    clips: tuple[ReportClip, ...]
    clip_source: str
    predictions: tuple[PredictionExplanation, ...] | None
    faithfulness: tuple[FaithfulnessResult, ...] | None
    notes: tuple[str, ...] = ()

    def channels_of(self, layer: str) -> list[ChosenChannel]:
        return [c for c in self.channels if c.layer == layer]


def analyse(
    exported: ExportedModel,
    options: ReportOptions,
    out: str | os.PathLike[str],
    *,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
    videos: Sequence[str | os.PathLike[str]] | None = None,
    measure: bool = True,
    explain: bool = True,
    progress: StepCounter | None = None,
) -> ReportAnalysis:
    """Compute the report's :class:`ReportAnalysis` once.

    Args:
        exported: the loaded model (:func:`conv3t.exported.load_exported`); moved to ``options.device``.
        options: the report's options; ``out``: the report folder (the verification is stored there).
        layers, channels: as :func:`~conv3t.explain.report.build_report`; checked before any slow work.
        videos: the clips to explain (default: ``options.num_clips`` of the run's validation data).
        measure: measure the verification (when ``options.verify`` and the model is 3T).
        explain: explain each clip's prediction (and check it, when ``options.faithfulness``).
        progress: counts one step for the clips, one for the verification, one for the explanations and one
            per clip for the faithfulness checks (its total grows by the steps it learns it will take).
    """
    progress = progress or StepCounter(1, False)
    device = resolve_device(options.device)
    model = exported.model.to(device).eval()
    info = exported.info
    is_3t = bool(conv3t_layers(model))
    names = select_layers(model, layers)
    if channels:  # a bad index fails now, not after the verification
        choose_channels(model, names, channels, None, options.num_channels)
    table = temporal_parameters(model, input_size=(info.num_frames, *info.size)) if is_3t else None
    Path(out, "images").mkdir(parents=True, exist_ok=True)
    with progress.step("reading clips"):
        clips, clip_source = read_clips(info, videos, options.num_clips)
        predict(model, clips, info.classes)
    measure = measure and options.verify and is_3t
    explain = explain and bool(clips)
    checks = explain and options.faithfulness
    progress.add(int(measure) + int(explain) + (len(clips) if checks else 0))
    verification, readings, verdicts, notes = None, None, None, ()
    if measure:
        with progress.step("verification against motion stimuli"):
            verification, notes = measured_verification(model, info, options, Path(out), device, progress)
        readings, verdicts = channel_readings(verification, "image"), layer_verdicts(verification)
    ranking = _ranking(table, readings, verdicts)
    chosen = choose_channels(model, names, channels, ranking, options.num_channels)
    shown = tuple(_chosen(name, c, ranking) for name in names for c in chosen[name])
    predictions = faithfulness = None
    if explain:
        with progress.step("predictions: attribution, Grad-CAM, frame importance"):
            predictions = _explain(model, clips, info, readings)
        if checks:
            faithfulness = _check(model, clips, predictions, info, options, progress)
    return ReportAnalysis(
        model=model,
        info=info,
        source=exported.path,
        device=device,
        is_3t=is_3t,
        table=table,
        verification=verification,
        readings=readings,
        verdicts=verdicts,
        ranking=ranking,
        layers=tuple(names),
        channels=shown,
        clips=tuple(clips),
        clip_source=clip_source,
        predictions=predictions,
        faithfulness=faithfulness,
        notes=tuple(notes),
    )


def _ranking(
    table: pd.DataFrame | None, readings: pd.DataFrame | None, verdicts: pd.DataFrame | None
) -> pd.DataFrame | None:
    """The one ranking of the report: by the measured readings when there are any (strongly tuned first)."""
    if table is None or not len(table):
        return None
    if readings is None or verdicts is None:
        return rank_channels(table, per_layer=True)
    image = verdicts[verdicts["mode"] == "image"]
    # False only for a layer whose parameters were shown not to read as image motion; unknown (too few tuned
    # channels) or partly readable layers get no general warning on their cards
    verdict = {"readable": True, "not readable": False}
    readable = {str(r["layer"]): verdict[r["verdict"]] for _, r in image.iterrows() if r["verdict"] in verdict}
    return rank_channels(table, per_layer=True, readings=readings, readable=readable)


def _chosen(layer: str, channel: int, ranking: pd.DataFrame | None) -> ChosenChannel:
    """The channel's ranking score and sentence; with measured readings the measured sentence is the headline."""
    if ranking is None:
        return ChosenChannel(layer, channel)
    row = ranking[(ranking["layer"] == layer) & (ranking["channel"] == channel)]
    if not len(row):
        return ChosenChannel(layer, channel)
    r = row.iloc[0]
    if "measured_sentence" not in row.columns:
        return ChosenChannel(layer, channel, float(r["score"]), str(r["sentence"]))
    space = "in the image" if layer == ranking["layer"].iloc[0] else "in its input features"
    readings = ((f"Parameters ({space})", str(r["parameter_sentence"])), ("Agreement", str(r["agreement_sentence"])))
    return ChosenChannel(layer, channel, float(r["score"]), str(r["measured_sentence"]), readings)


def attributed_layers(model: nn.Module) -> list[str]:
    """Every layer with a temporal extent (Conv3T / Conv3d with depth > 1), in model order."""
    return [
        name for name, m in model.named_modules() if isinstance(m, (Conv3T, torch.nn.Conv3d)) and m.kernel_size[0] > 1
    ]


def _explain(
    model: nn.Module, clips: list[ReportClip], info: ModelInfo, readings: pd.DataFrame | None
) -> tuple[PredictionExplanation, ...]:
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
    )
    for record, clip in zip(records, clips):
        record.label = clip.label
    return tuple(records)


def _check(
    model: nn.Module,
    clips: list[ReportClip],
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
