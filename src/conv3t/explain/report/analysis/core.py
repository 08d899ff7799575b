"""Compute once, render after: everything the report says about a model, as one frozen value.

:func:`analyse` reads the temporal parameters, measures the readings (the verification, reused from a store when
one is given, :mod:`conv3t.verify.store`), ranks the channels once (:func:`conv3t.explain.rank_channels`, with
the measured readings when there are any), chooses the channels shown, predicts and explains each clip
(attribution, Grad-CAM, frame importance), checks that explanation (:mod:`conv3t.explain.faithfulness`) and
computes the chosen channels' activation maximisation, saliency and filter slices. It writes nothing; the data
files are :mod:`conv3t.explain.report.artifacts`, the page :mod:`conv3t.explain.report.render`, both functions
of the :class:`ReportAnalysis` it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from conv3t.explain.describe import rank_channels
from conv3t.explain.faithfulness import FaithfulnessResult
from conv3t.explain.methods.layers import temporal_layers
from conv3t.explain.report.analysis.channels import ChannelViews, channel_views
from conv3t.explain.report.analysis.inputs import ReportClip, predict
from conv3t.explain.report.analysis.layers import choose_channels, select_layers
from conv3t.explain.report.analysis.predictions import PredictionExplanation, check_explanations, explain_clips
from conv3t.explain.report.analysis.verification import measured_verification
from conv3t.explain.report.options import OptionError, ReportOptions
from conv3t.explain.report.progress import StepCounter
from conv3t.exported import ModelInfo
from conv3t.nn import conv3t_layers
from conv3t.readout import temporal_parameters
from conv3t.runtime import resolve_device
from conv3t.verify import VerificationResult
from conv3t.verify.readings import channel_readings, layer_verdicts

__all__ = ["ChosenChannel", "Need", "ReportAnalysis", "analyse", "check_selection"]


class Need(Enum):
    """The slow parts of the analysis; :func:`analyse` computes those it is asked for (a report: those its
    sections show)."""

    VERIFICATION = "the verification against motion stimuli (the measured readings, the ranking by them)"
    PREDICTIONS = "each clip's explained prediction and its faithfulness checks"
    CHANNELS = "activation maximisation and saliency of the channels shown"


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
    """The report's computed content; the data files and the page are functions of it.

    Attributes:
        model: the model, in eval mode on ``device``; ``info``: its ``model.json``; ``source``: the weights file it
            was loaded from (None: given as an object); ``options``: the options it was computed with.
        is_3t: the model has Conv3T layers; ``parameter_count``: its parameters; ``temporal_layers``: its
            layers with a temporal extent.
        table: :func:`conv3t.readout.temporal_parameters` at the model's clip size (None for 3D models).
        verification: :func:`conv3t.verify.verify_model` of the model (None: not measured) and
            ``verification_key`` its store key; ``readings`` and ``verdicts``:
            :func:`conv3t.verify.readings.channel_readings` (image mode) and ``layer_verdicts``.
        ranking: :func:`conv3t.explain.rank_channels` of ``table`` per layer, with the readings when measured.
        layers: the layers explained, in model order; ``channels``: the channels shown, layer by layer, and
            ``views`` their pictures (:class:`ChannelViews`, in the same order; None: not computed).
        clips: the input clips with the model's predictions; ``clip_source``: where they come from or why none.
        predictions: each clip's explanation (None: not explained); ``faithfulness``: its checks (None: not run).
        notes: how it was computed (reused results, batch sizes), shown at the top of the page.
    """

    model: nn.Module
    info: ModelInfo
    source: Path | None
    options: ReportOptions
    device: torch.device
    is_3t: bool
    parameter_count: int
    temporal_layers: tuple[str, ...]
    table: pd.DataFrame | None
    verification: VerificationResult | None
    verification_key: str | None
    readings: pd.DataFrame | None
    verdicts: pd.DataFrame | None
    ranking: pd.DataFrame | None
    layers: tuple[str, ...]
    channels: tuple[ChosenChannel, ...]
    views: tuple[ChannelViews, ...] | None
    clips: tuple[ReportClip, ...]
    clip_source: str
    predictions: tuple[PredictionExplanation, ...] | None
    faithfulness: tuple[FaithfulnessResult, ...] | None
    notes: tuple[str, ...] = ()

    def channels_of(self, layer: str) -> list[ChosenChannel]:
        return [c for c in self.channels if c.layer == layer]


def check_selection(model: nn.Module, options: ReportOptions) -> list[str]:
    """The layers to explain (``options.layers`` checked, or the default ones); a bad ``options.channels`` index
    fails here too, before any slow work."""
    names = select_layers(model, options.layers)
    if options.channels:
        choose_channels(model, names, options.channels, None, options.num_channels)
    return names


def analyse(
    model: nn.Module,
    info: ModelInfo,
    clips: Sequence[ReportClip],
    options: ReportOptions,
    progress: StepCounter | None = None,
    *,
    clip_source: str = "the clips given",
    needs: frozenset[Need] = frozenset(Need),
    source: Path | None = None,
    store: Path | None = None,
) -> ReportAnalysis:
    """Compute the report's :class:`ReportAnalysis` once; writes nothing.

    Args:
        model: the network; moved to ``options.device`` and put in eval mode. ``info``: its ``model.json``
            (classes, clip size, normalisation; :class:`conv3t.exported.ModelInfo`).
        clips: the clips to predict and explain (normalised model inputs, :class:`ReportClip`), e.g. from
            :func:`conv3t.explain.report.analysis.read_clips`; ``clip_source`` says where they come from.
        options: the report's options (layers, channels, what to measure and check).
        progress: counts the steps (its total grows by the steps it learns it will take): the verification,
            the explanations, each clip's checks, each layer's activation maximisation, each channel's saliency.
        needs: the slow parts to compute (:class:`Need`); the verification only when ``options.verify`` and the
            model is 3T, the checks only when ``options.faithfulness``.
        source: the weights file the model came from (shown on the page); ``store``: a folder to reuse a stored
            verification from (:mod:`conv3t.verify.store`).
    """
    progress = progress or StepCounter(0, False)
    device = _device(options)
    model = model.to(device).eval()
    is_3t = bool(conv3t_layers(model))
    names = check_selection(model, options)
    table = temporal_parameters(model, input_size=(info.num_frames, *info.size)) if is_3t else None
    clips = predict(model, clips, info.classes)
    measure = Need.VERIFICATION in needs and options.verify and is_3t
    explain = Need.PREDICTIONS in needs and bool(clips)
    checks = explain and options.faithfulness
    progress.add(int(measure) + int(explain) + (len(clips) if checks else 0))
    measured = None
    if measure:
        with progress.step("verification against motion stimuli"):
            measured = measured_verification(model, info, options, store, device, progress)
    verification = None if measured is None else measured.result
    readings = None if verification is None else channel_readings(verification, "image")
    verdicts = None if verification is None else layer_verdicts(verification)
    ranking = _ranking(table, readings, verdicts)
    chosen = choose_channels(model, names, options.channels, ranking, options.num_channels)
    shown = tuple(_chosen(name, c, ranking) for name in names for c in chosen[name])
    predictions = faithfulness = None
    if explain:
        with progress.step("predictions: attribution, Grad-CAM, frame importance"):
            predictions = explain_clips(model, clips, info, readings)
        if checks:
            faithfulness = check_explanations(model, clips, predictions, info, options, progress)
    views = _views(model, info, shown, clips, options, is_3t, progress) if Need.CHANNELS in needs else None
    return ReportAnalysis(
        model=model,
        info=info,
        source=source,
        options=options,
        device=device,
        is_3t=is_3t,
        parameter_count=sum(p.numel() for p in model.parameters()),
        temporal_layers=tuple(temporal_layers(model)),
        table=table,
        verification=verification,
        verification_key=None if measured is None else measured.key,
        readings=readings,
        verdicts=verdicts,
        ranking=ranking,
        layers=tuple(names),
        channels=shown,
        views=views,
        clips=tuple(clips),
        clip_source=clip_source,
        predictions=predictions,
        faithfulness=faithfulness,
        notes=() if measured is None else measured.notes,
    )


def _device(options: ReportOptions) -> torch.device:
    try:
        return resolve_device(options.device)
    except ValueError as err:  # "device: 'cuda' asked for, but ..."
        raise OptionError("device", str(err).removeprefix("device")) from None


def _views(
    model: nn.Module,
    info: ModelInfo,
    shown: Sequence[ChosenChannel],
    clips: Sequence[ReportClip],
    options: ReportOptions,
    is_3t: bool,
    progress: StepCounter,
) -> tuple[ChannelViews, ...]:
    """The shown channels' pictures; one progress step per layer and one per channel."""
    pairs = [(c.layer, c.channel) for c in shown]
    progress.add(len(dict.fromkeys(layer for layer, _ in pairs)) + len(pairs))
    return channel_views(model, info, pairs, clips, options, is_3t, progress)


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
