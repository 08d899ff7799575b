"""Network-level verification: do channels prefer the motion their temporal parameters say?

Every Conv3T channel of a model is driven with stimuli of known motion (:mod:`conv3t.verify.stimuli`), its
preferred motion is measured from its response energies (:mod:`conv3t.verify.tuning`), and compared with the
motion its parameters predict, read with the explanations' content-motion convention
(:func:`conv3t.readout.temporal_parameters`).

Two modes:

* ``"image"``: stimuli move in the network's input (pixels, frames) and reach each layer through the layers
  before it; predictions are the explanation's image-space readings (``dx_image_px / frames_per_step`` etc.).
  This is what a user reading the explanation assumes, but deeper layers see features, not pixels, so only
  the first layer(s) are expected to follow their parameters closely.
* ``"layer"``: each Conv3T layer alone is driven by multi-channel textures moving in *its own input*; the
  predictions are the kernel-pixel readings (``dx_kernel_px`` x spatial dilation / temporal dilation). This
  checks the reading of every layer's parameters independently of what feeds it.

Agreement rules (per layer and motion type; thresholds are :class:`VerifyConfig` fields): a channel is
*strongly tuned* when its direction selectivity index (translation) or the magnitude of its rotation / zoom
index reaches the threshold, and *predicted to move* when its parameters' motion per frame exceeds a small
minimum. Among channels that are both, translation agrees when the measured and predicted directions differ
by at most 45 degrees (chance 25 %), rotation and zoom when the senses match (chance 50 %). Speeds are
compared by Spearman rank correlation over the same channels. Because a channel that prefers a translation
and has an asymmetric filter also prefers one sense of rotation (and zoom) about a nearby centre, rotation and
zoom agreement is also reported for the counted channels whose rotation (zoom) *dominates* their translation
(``dominant_counted`` / ``dominant_agree``; -1 for translation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from conv3t.exported import load_exported
from conv3t.nn import conv3t_layers
from conv3t.runtime import resolve_device
from conv3t.verify.agreement import AGREE_ANGLE_DEG, CHANCE, SUMMARY_FIELDS, judge, summarize
from conv3t.verify.budget import MemoryBudget, memory_budget, peak_bytes, plan_batch
from conv3t.verify.closed_form import exact_layer_energies
from conv3t.verify.covariance import TextureCovariance
from conv3t.verify.energies import EnergyAccumulator, StimulusSet, stream_energies
from conv3t.verify.predicted import predicted_motion
from conv3t.verify.sequential import UNCERTAINTY_COLUMNS, Decision, Thresholds, decide
from conv3t.verify.stimuli import Motion, noise_texture, standard_stimuli
from conv3t.verify.tuning import tuning_table

__all__ = [
    "AGREE_ANGLE_DEG",
    "CHANCE",
    "LAYER_ENERGIES",
    "SUMMARY_FIELDS",
    "RunSettings",
    "StageProgress",
    "VerificationResult",
    "VerifyConfig",
    "predicted_motion",
    "summarize",
    "verify_model",
    "verify_run",
]


#: side of the periodic stimulus texture (pixels)
_TEXTURE_SIZE = 256
#: values of :attr:`VerifyConfig.layer_energies`
LAYER_ENERGIES: tuple[str, ...] = ("exact", "sampled")


@dataclass
class VerifyConfig:
    """Settings of a verification run (all recorded in the output).

    Attributes:
        modes: ``("image",)``, ``("layer",)`` or both.
        num_frames, size: image-mode stimulus clips ``T`` and ``H = W`` (default: the model's training clip,
            ``T x H x W``); layer-mode clips are ``D * dilation + 6`` frames of ``k * dilation + 2 * layer_margin``
            pixels.
        textures: views of the texture (random offsets) per motion, the most image mode measures (see
            ``sequential``); energies are averaged over the views measured.
        centre_radius: half-size, in output pixels, of the window about the map centre where rotation and zoom
            are measured.
        translation_threshold, rotation_threshold, zoom_threshold: minimum |index| (opposite-sense energy
            contrast, see :mod:`conv3t.verify.tuning`) of a strongly tuned channel.
        min_speed (pixels/frame), min_rotation (degrees/frame), min_zoom_percent (% per frame): minimum
            predicted motion for a channel to be counted.
        layer_energies: how layer mode gets its energies: ``"exact"`` (default) computes the expectation of
            the sampled measurement in closed form from each layer's kernel and the textures' autocorrelation
            (:mod:`conv3t.verify.closed_form`: no sampling noise, ``textures`` and ``seed`` do not apply);
            ``"sampled"`` renders ``textures`` views of every stimulus and runs the layer on them. Image mode
            is always sampled (the network is not linear).
        sequential: image mode measures its views ``view_round`` at a time and stops once every channel's
            readings are decided or cannot be decided within ``textures`` views (:mod:`conv3t.verify.sequential`;
            docs/conventions.md, "Sequential views"); ``False`` measures all ``textures`` views. Either way each
            channel's readings carry jackknife standard errors and an ``undecided`` flag.
        seed: texture seed.
        batch_size: the most clips per forward pass; the memory budget may choose fewer (the batch size does
            not change the result beyond float rounding).
    """

    modes: tuple[str, ...] = ("image", "layer")
    num_frames: int | None = None
    size: int | None = None
    layer_margin: int = 4
    centre_radius: int = 2
    textures: int = 24
    directions: int = 12
    speeds: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
    rotations: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
    zooms: tuple[float, ...] = (1.03, 1.06, 1.12, 1.25)
    translation_threshold: float = 0.1
    rotation_threshold: float = 0.05
    zoom_threshold: float = 0.05
    min_speed: float = 0.1
    min_rotation: float = 0.5
    min_zoom_percent: float = 0.5
    seed: int = 0
    batch_size: int = 32
    layer_energies: str = "exact"
    sequential: bool = False  # measured: never stops before the cap on trained models (BENCHMARKS.md, "Issue 28b")
    view_round: int = 4

    def __post_init__(self) -> None:
        for mode in self.modes:
            if mode not in ("image", "layer"):
                raise ValueError(f"modes must be 'image' and/or 'layer', got {mode!r}")
        if self.textures < 1 or self.view_round < 1:
            raise ValueError(f"textures and view_round must be >= 1, got {self.textures}, {self.view_round}")
        if self.layer_energies not in LAYER_ENERGIES:
            raise ValueError(f"layer_energies must be one of {LAYER_ENERGIES}, got {self.layer_energies!r}")

    def stimuli(self) -> list[Motion]:
        return standard_stimuli(self.directions, self.speeds, self.rotations, self.zooms)


@dataclass
class VerificationResult:
    """Output of :func:`verify_model`.

    Attributes:
        channels: one row per mode x layer x channel: predictions (``pred_*``) and measurements (tuning
            columns of :func:`conv3t.verify.tuning.tuning_table`) plus per-motion ``*_counted`` / ``*_agree``.
        summary: one row per mode x layer x motion type with :data:`SUMMARY_FIELDS`.
        config: the :class:`VerifyConfig` as a dict, plus the stimulus clip size actually used.
        seconds: wall time.
    """

    channels: pd.DataFrame
    summary: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "seconds": self.seconds,
            "summary": json_records(self.summary),
            "channels": json_records(self.channels),
        }


def json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as JSON-ready dicts (NaN and infinity as None)."""
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in df.astype(object).to_dict(orient="records")
    ]


#: ``progress(stage, done, total)``: e.g. ``("image mode", 120, 1560)`` clips measured of a stage.
StageProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunSettings:
    """How a verification runs (not what it measures): device, memory budget, progress and retry messages."""

    device: torch.device
    budget: MemoryBudget
    progress: StageProgress | None = None
    notify: Callable[[str], None] | None = None
    batch_size: int | None = None
    looks: Callable[[Decision], None] | None = None


#: ``stop(accumulators, views)``: after a round of views, whether the readings are decided (stop measuring).
StopRule = Callable[[dict[str, EnergyAccumulator], int], bool]


def _measure(
    model: nn.Module,
    layers: Sequence[str],
    stimuli: StimulusSet,
    cfg: VerifyConfig,
    run: RunSettings,
    stage: str,
    stop: StopRule | None = None,
) -> tuple[dict[str, EnergyAccumulator], int, int]:
    """Stream ``stimuli`` through ``model``: ``(layer -> accumulator, batch size used, views measured)``.

    The first clip is measured under the memory probe (:func:`conv3t.verify.budget.peak_bytes`); its peak sizes
    the batches of the rest (:func:`conv3t.verify.budget.plan_batch`, at most ``cfg.batch_size``), unless
    ``run.batch_size`` fixes it. With a ``stop`` rule the views are measured ``cfg.view_round`` at a time and
    the rule is asked after each round (:mod:`conv3t.verify.sequential`)."""
    total, per_view = len(stimuli), len(stimuli.motions)

    def report(done: int, _total: int) -> None:
        if run.progress is not None:
            run.progress(stage, done, total)

    acc: dict[str, EnergyAccumulator] = {}

    def first() -> None:
        acc.update(stream_energies(model, layers, stimuli, 1, cfg.centre_radius, stop=1, progress=report)[0])

    if run.batch_size is None:
        item = peak_bytes(first, run.device)
        h, w = (stimuli.size, stimuli.size) if isinstance(stimuli.size, int) else stimuli.size
        what = f"verification ({stage}, {stimuli.frames} x {h} x {w} clips)"
        option = "the stimulus clip (VerifyConfig.num_frames / size)"
        batch = plan_batch(item, 0, run.budget, cfg.batch_size, what, option)
    else:
        first()
        batch = run.batch_size
    done, used = 1, batch
    while True:  # a round ends at a view boundary
        end = total if stop is None else min(total, (done // per_view + cfg.view_round) * per_view)
        _, used = stream_energies(
            model, layers, stimuli, used, cfg.centre_radius, done, end, report, acc, on_retry=run.notify
        )
        done = end
        if done >= total or (stop is not None and stop(acc, done // per_view)):
            break
    if done < total and run.progress is not None:
        run.progress(stage, done, done)  # stopped early: the stage is complete at the clips it measured
    return acc, used, done // per_view


def _energies(acc: dict[str, EnergyAccumulator], views: int) -> dict[str, np.ndarray]:
    return {n: a.result(views).cpu().numpy() for n, a in acc.items()}


def _stimulus_set(
    channels: int,
    motions: Sequence[Motion],
    frames: int,
    size: int | tuple[int, int],
    views: int,
    generator: torch.Generator,
    device: torch.device,
    shared: float = 0.7,
    **kw: Any,
) -> StimulusSet:
    """The probe set on ``views`` random windows of one texture (drawn now; clips are rendered per batch on
    ``device``); ``shared``: the fraction of variance common to the channels (:func:`noise_texture`)."""
    # drawn on the CPU: the same on every device
    tex = noise_texture(channels, size=_TEXTURE_SIZE, shared=shared, generator=generator)
    offsets = torch.rand(views, 2, generator=generator) * _TEXTURE_SIZE
    return StimulusSet(tex.to(device), offsets, tuple(motions), frames, size, **kw)


def _image_energies(
    model: nn.Module,
    layers: Sequence[str],
    motions: Sequence[Motion],
    cfg: VerifyConfig,
    clip: tuple[int, tuple[int, int]],
    norm: tuple[Sequence[float], Sequence[float]],
    in_channels: int,
    run: RunSettings,
    preds: pd.DataFrame,
) -> tuple[dict[str, np.ndarray], int, Decision]:
    """``(layer -> (M, C, 2) energies, batch size used, the decision on the views measured)``: views in rounds
    until the readings are decided (``cfg.sequential``) or all ``cfg.textures`` of them."""
    g = torch.Generator().manual_seed(cfg.seed)
    mean, std = (tuple(float(v) for v in n) for n in norm)
    stimuli = _stimulus_set(in_channels, motions, clip[0], clip[1], cfg.textures, g, run.device, mean=mean, std=std)
    thr = Thresholds(cfg.translation_threshold, cfg.rotation_threshold, cfg.zoom_threshold, cfg.min_speed)
    by_layer = {name: df.sort_values("channel") for name, df in preds.groupby("layer", sort=False)}
    predicted = {n: by_layer[n][["pred_vx", "pred_vy"]].to_numpy(float) for n in layers}

    looks: list[Decision] = []

    def look(acc: dict[str, EnergyAccumulator]) -> Decision:
        looks.append(decide({n: acc[n].view_stats() for n in layers}, motions, thr, cfg.textures, predicted))
        if run.looks is not None:
            run.looks(looks[-1])
        return looks[-1]

    def stop(acc: dict[str, EnergyAccumulator], views: int) -> bool:
        return views >= 2 and look(acc).pending == 0

    acc, used, views = _measure(model, layers, stimuli, cfg, run, "image mode", stop if cfg.sequential else None)
    final = looks[-1] if looks and looks[-1].views == views else look(acc)
    return _energies(acc, views), used, final


def _layer_clip(layer: nn.Module, cfg: VerifyConfig) -> tuple[int, int]:
    """Layer-mode stimulus clip of a Conv3T: ``(frames, side)``."""
    frames = layer.temporal_depth * layer.dilation[0] + 6
    side = max(layer.kernel_size[1] * layer.dilation[1], layer.kernel_size[2] * layer.dilation[2])
    return frames, side + 2 * cfg.layer_margin


def _layer_energies(
    model: nn.Module, layers: Sequence[str], motions: Sequence[Motion], cfg: VerifyConfig, run: RunSettings
) -> tuple[dict[str, np.ndarray], int | None]:
    """``(layer -> (M, C, 2) energies, batch size used or None when nothing was rendered)``."""
    if cfg.layer_energies == "exact":
        modules = dict(model.named_modules())
        shown = {n: (modules[n], _layer_clip(modules[n], cfg)) for n in layers}
        covariance = TextureCovariance.of_noise(_TEXTURE_SIZE)
        return exact_layer_energies(shown, motions, covariance, cfg.centre_radius, run.progress), None
    # independent channels: the closed form's assumption, and what makes every channel's input alike
    g = torch.Generator().manual_seed(cfg.seed + 1)
    modules = dict(model.named_modules())
    out: dict[str, np.ndarray] = {}
    used = cfg.batch_size
    for k, name in enumerate(layers):
        layer = modules[name]
        frames, side = _layer_clip(layer, cfg)
        stimuli = _stimulus_set(layer.in_channels, motions, frames, side, cfg.textures, g, run.device, shared=0.0)
        acc, batch, views = _measure(layer, [""], stimuli, cfg, run, f"layer mode {k + 1}/{len(layers)} ({name})")
        out[name], used = _energies(acc, views)[""], min(used, batch)
    return out, used


def verify_model(
    model: nn.Module,
    *,
    num_frames: int,
    size: int | tuple[int, int],
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    in_channels: int = 3,
    config: VerifyConfig | None = None,
    device: str | torch.device | None = "auto",
    max_memory: str | int | None = None,
    progress: StageProgress | None = None,
    notify: Callable[[str], None] | None = None,
    batch_size: int | None = None,
    looks: Callable[[Decision], None] | None = None,
) -> VerificationResult:
    """Measure every Conv3T channel's motion preference and compare it with its parameters' reading.

    Args:
        model: a network whose input is ``(N, in_channels, T, H, W)`` (normalised pixels); it is moved to
            ``device``.
        num_frames, size: the clip the model was trained on (``T``, ``H`` or ``(H, W)``); image-mode stimuli
            are clips of that size (``config.num_frames`` / ``config.size`` override, the latter square).
        mean, std: per-channel normalisation applied to ``[0, 1]`` pixels before the model.
        config: :class:`VerifyConfig`.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
            (:func:`conv3t.runtime.resolve_device`).
        max_memory: memory budget of the streamed clips (``"4GB"``); default a fraction of the device's free
            memory (:func:`conv3t.verify.budget.memory_budget`).
        progress: called as ``progress(stage, done, total)`` while clips are measured.
        notify: gets a sentence when a batch is retried smaller after a GPU out-of-memory error.
        batch_size: clips per forward pass, instead of what the memory budget allows (no memory probe).
        looks: gets the :class:`conv3t.verify.sequential.Decision` after each round of image-mode views.

    Returns:
        :class:`VerificationResult`; ``config`` records the device, budget and batch sizes used.

    Raises:
        ValueError naming the argument; :class:`conv3t.verify.budget.MemoryBudgetError` when one clip does not fit
        the budget.
    """
    cfg = config or VerifyConfig()
    start = time.perf_counter()
    dev = resolve_device(device)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    run = RunSettings(dev, memory_budget(dev, max_memory), progress, notify, batch_size, looks)
    # image mode shows the model clips of its own size: stimuli move in the input it was trained on
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    frames = cfg.num_frames or num_frames
    stim_size = (cfg.size, cfg.size) if cfg.size else hw
    layers = _verified_layers(model)
    was_training = model.training
    model.to(dev).eval()
    motions = cfg.stimuli()
    batches: dict[str, int] = {}
    decision: Decision | None = None
    try:
        preds = predicted_motion(model, (frames, *stim_size), in_channels)
        energies: dict[str, dict[str, np.ndarray]] = {}
        if "image" in cfg.modes:
            clip, norm = (frames, stim_size), (mean, std)
            energies["image"], batches["image"], decision = _image_energies(
                model, layers, motions, cfg, clip, norm, in_channels, run, preds
            )
        if "layer" in cfg.modes:
            energies["layer"], used = _layer_energies(model, layers, motions, cfg, run)
            if used is not None:
                batches["layer"] = used
    finally:
        model.train(was_training)
    channels = judge(_tuning(energies, layers, motions).merge(preds, on=["layer", "channel"], how="left"), cfg)
    channels = _with_uncertainty(channels, decision)
    info = asdict(cfg)
    info.update(stimulus_frames=frames, stimulus_size=list(stim_size), stimuli=len(motions))
    info.update(device=str(dev), memory_budget=str(run.budget), batch_sizes=batches)
    info.update(views_measured={"image": decision.views} if decision is not None else {})
    return VerificationResult(
        channels=channels, summary=summarize(channels), config=info, seconds=time.perf_counter() - start
    )


def _verified_layers(model: nn.Module) -> list[str]:
    """The names of the model's Conv3T layers with temporal depth > 1 (ValueError when there are none)."""
    layers = [n for n, _ in conv3t_layers(model, min_depth=2)]
    if not layers:
        raise ValueError("the model has no Conv3T layer with temporal depth > 1: nothing to verify")
    return layers


def _with_uncertainty(channels: pd.DataFrame, decision: Decision | None) -> pd.DataFrame:
    """Add the image-mode readings' standard errors and ``undecided`` flags (:data:`UNCERTAINTY_COLUMNS`);
    layer-mode rows are never undecided and have no standard errors (none in closed form; not estimated when
    sampled)."""
    if decision is None:
        out = channels.assign(**{c: np.nan for c in UNCERTAINTY_COLUMNS})
    else:
        extra = decision.channels[["layer", "channel", *UNCERTAINTY_COLUMNS]].assign(mode="image")
        out = channels.merge(extra, on=["mode", "layer", "channel"], how="left")
    out["undecided"] = out["undecided"].eq(True)
    out["undecided_readings"] = out["undecided_readings"].where(out["undecided"], "").astype(str)
    return out


def _tuning(
    energies: dict[str, dict[str, np.ndarray]], layers: Sequence[str], motions: Sequence[Motion]
) -> pd.DataFrame:
    """One row per mode x layer x channel: the tuning columns of the measured ``(M, C, 2)`` energies."""
    parts = []
    for mode, per_layer in energies.items():
        for name in layers:
            e = per_layer[name]
            tuning = tuning_table(e[..., 0], motions, centre_energy=e[..., 1])
            tuning.insert(0, "channel", np.arange(len(tuning)))
            tuning.insert(0, "layer", name)
            tuning.insert(0, "mode", mode)
            parts.append(tuning)
    return pd.concat(parts, ignore_index=True)


def verify_run(
    run_dir: str | Path,
    config: VerifyConfig | None = None,
    device: str | torch.device | None = "auto",
    max_memory: str | int | None = None,
    progress: StageProgress | None = None,
    notify: Callable[[str], None] | None = None,
    looks: Callable[[Decision], None] | None = None,
) -> VerificationResult:
    """:func:`verify_model` on an exported run (``model.safetensors`` + ``model.json``)."""
    dev = resolve_device(device)
    exported = load_exported(run_dir, device=dev)
    info = exported.info
    result = verify_model(
        exported.model,
        num_frames=info.num_frames,
        size=info.size,
        mean=info.mean,
        std=info.std,
        config=config,
        device=dev,
        max_memory=max_memory,
        progress=progress,
        notify=notify,
        looks=looks,
    )
    result.config.update(run=str(run_dir), model=info.model, model_kwargs=info.model_kwargs, classes=info.classes)
    return result
