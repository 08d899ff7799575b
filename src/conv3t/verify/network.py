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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from conv3t.exported import load_exported
from conv3t.nn import conv3t_layers
from conv3t.readout import temporal_parameters
from conv3t.verify.stimuli import Motion, motion_clips, noise_texture, standard_stimuli
from conv3t.verify.tuning import response_energy, tuning_table

__all__ = [
    "SUMMARY_FIELDS",
    "VerificationResult",
    "VerifyConfig",
    "measure_energies",
    "predicted_motion",
    "summarize",
    "verify_model",
    "verify_run",
]

SUMMARY_FIELDS: tuple[str, ...] = (
    "mode",
    "layer",
    "motion",
    "channels",
    "tuned",
    "counted",
    "agree",
    "agreement",
    "chance",
    "median_angle_error_deg",
    "speed_spearman",
    "dominant_counted",
    "dominant_agree",
)


@dataclass
class VerifyConfig:
    """Settings of a verification run (all recorded in the output).

    Attributes:
        modes: ``("image",)``, ``("layer",)`` or both.
        num_frames, size: image-mode stimulus clips ``T`` and ``H = W`` (default: the model's training clip);
            layer-mode clips are ``D * dilation + 6`` frames of ``k * dilation + 2 * layer_margin`` pixels.
        textures: views of the texture (random offsets) per motion; energies are averaged over them.
        centre_radius: half-size, in output pixels, of the window about the map centre where rotation and zoom
            are measured.
        translation_threshold, rotation_threshold, zoom_threshold: minimum |index| (opposite-sense energy
            contrast, see :mod:`conv3t.verify.tuning`) of a strongly tuned channel.
        min_speed (pixels/frame), min_rotation (degrees/frame), min_zoom_percent (% per frame): minimum
            predicted motion for a channel to be counted.
        seed: texture seed.
        batch_size: clips per forward pass.
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
        def clean(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                for row in df.astype(object).to_dict(orient="records")
            ]

        return {
            "config": self.config,
            "seconds": self.seconds,
            "summary": clean(self.summary),
            "channels": clean(self.channels),
        }


def predicted_motion(model: nn.Module, input_size: tuple[int, int, int], in_channels: int = 3) -> pd.DataFrame:
    """Per-frame content motion that each channel's parameters predict, averaged over its steps.

    Zoom is averaged as a log factor; a step with a negative scale (possible after training: the sampling grid
    is point-reflected) counts as zoom ``1/|s|`` and an extra 180 degree turn.

    Returns one row per layer x channel with, in the network's input space (``image``): ``pred_vx``,
    ``pred_vy`` (pixels per frame), ``pred_rotation_cw_deg`` (degrees per frame, clockwise positive),
    ``pred_zoom_percent`` (content size change per frame, %); and the same in the layer's own input space
    with the suffix ``_layer`` (layer-input pixels per layer-input frame); ``rotation_dominant`` /
    ``zoom_dominant``: the rotation / zoom moves the kernel's edge (``(k-1)/2`` pixels from the centre) further
    per step than the translation moves its centre (mean over steps). Read from
    :func:`conv3t.readout.temporal_parameters`.
    """
    table = temporal_parameters(model, input_size=input_size, in_channels=in_channels)
    modules = dict(conv3t_layers(model, min_depth=2))
    table = table[table["layer"].isin(list(modules))].copy()
    fps = table["frames_per_step"].to_numpy()
    scale = table["scale"].to_numpy(float)
    # a negative scale is a point reflection: magnitude |s| and an extra half turn (temporal_parameters'
    # rotation_cw_deg already includes that half turn: it reads the canonical form)
    log_zoom = -np.log(np.maximum(np.abs(scale), 1e-12))
    dil = np.array([modules[name].dilation for name in table["layer"]], dtype=float).reshape(-1, 3)
    table["_vx"] = table["dx_image_px"] / fps
    table["_vy"] = table["dy_image_px"] / fps
    table["_rot"] = table["rotation_cw_deg"] / fps
    table["_lz"] = log_zoom / fps
    table["_vx_l"] = table["dx_kernel_px"] * dil[:, 2] / dil[:, 0]
    table["_vy_l"] = table["dy_kernel_px"] * dil[:, 1] / dil[:, 0]
    table["_rot_l"] = table["rotation_cw_deg"] / dil[:, 0]
    table["_lz_l"] = log_zoom / dil[:, 0]
    # displacement per step at the kernel's edge (kernel pixels) caused by each motion component
    half = 0.5 * (np.minimum(table["kernel_h"], table["kernel_w"]).to_numpy(float) - 1)
    table["_edge_t"] = np.hypot(table["dx_kernel_px"], table["dy_kernel_px"])
    table["_edge_r"] = np.abs(np.radians(table["rotation_cw_deg"])) * half
    table["_edge_z"] = np.abs(np.expm1(log_zoom)) * half
    columns = ["_vx", "_vy", "_rot", "_lz", "_vx_l", "_vy_l", "_rot_l", "_lz_l", "_edge_t", "_edge_r", "_edge_z"]
    # In the network's input (image mode) a step whose two slices do not both meet real frames has no effect
    # on the output: it predicts nothing, and a layer without such a step predicts no image motion (it is not
    # counted). Layer-mode clips are D * dilation + 6 frames long, where every step acts.
    image_columns = ["_vx", "_vy", "_rot", "_lz"]
    table.loc[~table["step_in_clip"].to_numpy(bool), image_columns] = np.nan
    m = table.groupby(["layer", "channel"], sort=False)[columns].mean().fillna(0.0).reset_index()
    return pd.DataFrame(
        {
            "layer": m["layer"],
            "channel": m["channel"].astype(int),
            "pred_vx": m["_vx"],
            "pred_vy": m["_vy"],
            "pred_rotation_cw_deg": m["_rot"],
            "pred_zoom_percent": np.expm1(m["_lz"]) * 100.0,
            "pred_vx_layer": m["_vx_l"],
            "pred_vy_layer": m["_vy_l"],
            "pred_rotation_cw_deg_layer": m["_rot_l"],
            "pred_zoom_percent_layer": np.expm1(m["_lz_l"]) * 100.0,
            "rotation_dominant": m["_edge_r"] > m["_edge_t"],
            "zoom_dominant": m["_edge_z"] > m["_edge_t"],
        }
    )


def _centre(size: int, radius: int) -> slice:
    """A window symmetric about the middle of a dimension: ``2 r + 1`` indices (odd sizes) or ``2 r + 2``."""
    lo, hi = (size - 1) // 2 - radius, size // 2 + 1 + radius
    return slice(max(lo, 0), min(hi, size))


class _EnergyAccumulator:
    """Collects, per layer, whole-map energies and the centre responses over texture views."""

    def __init__(self, radius: int) -> None:
        self.radius = radius
        self.full: list[Tensor] = []
        self.centre: list[Tensor] = []

    def add(self, output: Tensor) -> None:
        _, _, t, h, w = output.shape
        self.full.append(response_energy(output, 0.25))
        keep = slice(int(t * 0.25), t - int(t * 0.25)) if t >= 4 else slice(None)
        window = output[:, :, keep, _centre(h, self.radius), _centre(w, self.radius)].double()
        self.centre.append(window.flatten(2))

    def result(self, views: int) -> Tensor:
        """``(M, C, 2)``: mean whole-map energy; variance of the centre window's responses over views, time and
        window positions."""
        full = torch.cat(self.full).unflatten(0, (views, -1)).mean(dim=0)  # (M, C)
        centre = torch.cat(self.centre).unflatten(0, (views, -1))  # (V, M, C, T')
        centre = centre.permute(1, 2, 0, 3).flatten(2).var(dim=2, unbiased=False)
        return torch.stack((full, centre), dim=-1)


@torch.no_grad()
def measure_energies(
    model: nn.Module,
    layers: Sequence[str],
    clips: Tensor,
    batch_size: int = 32,
    views: int = 1,
    centre_radius: int = 2,
) -> dict[str, Tensor]:
    """Response energies of the named Conv3T layers of ``model`` to ``clips``.

    Args:
        model: the network (put in eval mode by the caller); ``""`` names the model itself.
        layers: qualified module names.
        clips: ``(V * M, C, T, H, W)`` network inputs: ``V`` texture views of the same ``M`` motions, view-major.
        views: ``V``.
        centre_radius: half-size (output pixels) of the window about the map's centre for index 1.

    Returns:
        layer name -> ``(M, out_channels, 2)``: index 0 the whole-map energy
        (:func:`conv3t.verify.tuning.response_energy`, 25 % border) averaged over views; index 1 the
        variance, over views, (border-cropped) time and a window of ``2 r + 1`` (``2 r + 2`` for even sizes)
        positions about the centre of the map, i.e. about the centre of the stimulus' rotation / zoom. The
        window is symmetric about that centre, so a channel's translation preference adds the same energy to
        both senses of rotation (and of zoom) there, up to texture noise.
    """
    modules = dict(model.named_modules())
    acc = {n: _EnergyAccumulator(centre_radius) for n in layers}
    handles = []
    for name in layers:

        def hook(_m: nn.Module, _args: tuple, output: Tensor, _name: str = name) -> None:
            acc[_name].add(output)

        handles.append(modules[name].register_forward_hook(hook))
    try:
        for start in range(0, clips.shape[0], batch_size):
            model(clips[start : start + batch_size])
    finally:
        for h in handles:
            h.remove()
    return {n: a.result(views) for n, a in acc.items()}


def _views(
    channels: int, motions: Sequence[Motion], frames: int, size: int, views: int, generator: torch.Generator
) -> Tensor:
    """``(views * M, channels, T, size, size)``: the probe set on ``views`` random windows of one texture."""
    tex = noise_texture(channels, size=256, generator=generator)
    offsets = torch.rand(views, 2, generator=generator) * 256
    return torch.cat([motion_clips(tex, motions, frames, size, offset=(float(x), float(y))) for x, y in offsets])


def _image_energies(
    model: nn.Module,
    layers: Sequence[str],
    motions: Sequence[Motion],
    cfg: VerifyConfig,
    frames: int,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    in_channels: int,
) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(cfg.seed)
    device = next(model.parameters()).device
    mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1, 1)
    pixels = (0.5 + 0.18 * _views(in_channels, motions, frames, size, cfg.textures, g)).clamp(0.0, 1.0)
    clips = (pixels - mean_t) / std_t
    energies = measure_energies(model, layers, clips.to(device), cfg.batch_size, cfg.textures, cfg.centre_radius)
    return {n: e.cpu().numpy() for n, e in energies.items()}


def _layer_energies(
    model: nn.Module, layers: Sequence[str], motions: Sequence[Motion], cfg: VerifyConfig
) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(cfg.seed + 1)
    modules = dict(model.named_modules())
    out: dict[str, np.ndarray] = {}
    for name in layers:
        layer = modules[name]
        frames = layer.temporal_depth * layer.dilation[0] + 6
        side = max(layer.kernel_size[1] * layer.dilation[1], layer.kernel_size[2] * layer.dilation[2])
        clips = _views(layer.in_channels, motions, frames, side + 2 * cfg.layer_margin, cfg.textures, g)
        energies = measure_energies(
            layer, [""], clips.to(layer.weight.device), cfg.batch_size, cfg.textures, cfg.centre_radius
        )
        out[name] = energies[""].cpu().numpy()
    return out


def _angle_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def _judge(channels: pd.DataFrame, cfg: VerifyConfig) -> pd.DataFrame:
    """Add predicted-motion magnitudes and per-motion counted / agree flags for the given mode's columns."""
    df = channels.copy()
    layer_mode = df["mode"] == "layer"

    def pick(col: str) -> np.ndarray:
        return np.where(layer_mode, df[f"{col}_layer"], df[col])

    vx, vy = pick("pred_vx"), pick("pred_vy")
    df["pred_speed"] = np.hypot(vx, vy)
    df["pred_direction_deg"] = np.degrees(np.arctan2(vy, vx)) % 360.0
    rot = pick("pred_rotation_cw_deg")
    zoom = pick("pred_zoom_percent")
    df["pred_rotation_cw"] = rot
    df["pred_zoom"] = zoom
    df["angle_error_deg"] = _angle_error(df["measured_direction_deg"].to_numpy(), df["pred_direction_deg"].to_numpy())
    df["translation_tuned"] = df["translation_index"].abs() >= cfg.translation_threshold
    df["translation_counted"] = df["translation_tuned"] & (df["pred_speed"] >= cfg.min_speed)
    df["translation_agree"] = df["translation_counted"] & (df["angle_error_deg"] <= 45.0)
    df["rotation_tuned"] = df["rotation_index"].abs() >= cfg.rotation_threshold
    df["rotation_counted"] = df["rotation_tuned"] & (np.abs(rot) >= cfg.min_rotation)
    df["rotation_agree"] = df["rotation_counted"] & (np.sign(rot) == np.sign(df["rotation_index"]))
    df["zoom_tuned"] = df["zoom_index"].abs() >= cfg.zoom_threshold
    df["zoom_counted"] = df["zoom_tuned"] & (np.abs(zoom) >= cfg.min_zoom_percent)
    df["zoom_agree"] = df["zoom_counted"] & (np.sign(zoom) == np.sign(df["zoom_index"]))
    return df


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def summarize(channels: pd.DataFrame) -> pd.DataFrame:
    """Per mode x layer x motion type: counts, agreement fraction, chance level and speed rank correlation."""
    rows = []
    chance = {"translation": 0.25, "rotation": 0.5, "zoom": 0.5}
    measured = {"translation": "measured_speed", "rotation": "measured_rotation_speed", "zoom": "measured_zoom"}
    predicted = {"translation": "pred_speed", "rotation": "pred_rotation_cw", "zoom": "pred_zoom"}
    for (mode, layer), df in channels.groupby(["mode", "layer"], sort=False):
        for motion in ("translation", "rotation", "zoom"):
            counted = df[df[f"{motion}_counted"]]
            agree = int(counted[f"{motion}_agree"].sum())
            pred = np.abs(counted[predicted[motion]].to_numpy(float))
            meas = counted[measured[motion]].to_numpy(float)
            if motion == "zoom":
                meas = np.log(meas)
            rows.append(
                {
                    "mode": mode,
                    "layer": layer,
                    "motion": motion,
                    "channels": len(df),
                    "tuned": int(df[f"{motion}_tuned"].sum()),
                    "counted": len(counted),
                    "agree": agree,
                    "agreement": agree / len(counted) if len(counted) else math.nan,
                    "chance": chance[motion],
                    "median_angle_error_deg": float(counted["angle_error_deg"].median())
                    if motion == "translation" and len(counted)
                    else math.nan,
                    "speed_spearman": _spearman(pred, meas),
                    "dominant_counted": int(counted[f"{motion}_dominant"].sum()) if motion != "translation" else -1,
                    "dominant_agree": int((counted[f"{motion}_dominant"] & counted[f"{motion}_agree"]).sum())
                    if motion != "translation"
                    else -1,
                }
            )
    return pd.DataFrame(rows, columns=list(SUMMARY_FIELDS))


def verify_model(
    model: nn.Module,
    *,
    num_frames: int,
    size: int | tuple[int, int],
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    in_channels: int = 3,
    config: VerifyConfig | None = None,
) -> VerificationResult:
    """Measure every Conv3T channel's motion preference and compare it with its parameters' reading.

    Args:
        model: a network whose input is ``(N, in_channels, T, H, W)`` (normalised pixels).
        num_frames, size: the clip the model was trained on (``T``, ``H`` or ``(H, W)``); image-mode stimuli
            default to ``T`` frames of twice that side (``config.num_frames`` / ``config.size`` override).
        mean, std: per-channel normalisation applied to ``[0, 1]`` pixels before the model.
        config: :class:`VerifyConfig`.

    Returns:
        :class:`VerificationResult`.
    """
    cfg = config or VerifyConfig()
    for mode in cfg.modes:
        if mode not in ("image", "layer"):
            raise ValueError(f"modes must be 'image' and/or 'layer', got {mode!r}")
    start = time.perf_counter()
    side = size if isinstance(size, int) else max(int(size[0]), int(size[1]))
    frames = cfg.num_frames or num_frames
    stim_size = cfg.size or side
    layers = [n for n, _ in conv3t_layers(model, min_depth=2)]
    if not layers:
        raise ValueError("the model has no Conv3T layer with temporal depth > 1: nothing to verify")
    was_training = model.training
    model.eval()
    motions = cfg.stimuli()
    try:
        preds = predicted_motion(model, (frames, stim_size, stim_size), in_channels)
        energies: dict[str, dict[str, np.ndarray]] = {}
        if "image" in cfg.modes:
            energies["image"] = _image_energies(model, layers, motions, cfg, frames, stim_size, mean, std, in_channels)
        if "layer" in cfg.modes:
            energies["layer"] = _layer_energies(model, layers, motions, cfg)
    finally:
        model.train(was_training)
    parts = []
    for mode, per_layer in energies.items():
        for name in layers:
            e = per_layer[name]
            tuning = tuning_table(e[..., 0], motions, centre_energy=e[..., 1])
            tuning.insert(0, "channel", np.arange(len(tuning)))
            tuning.insert(0, "layer", name)
            tuning.insert(0, "mode", mode)
            parts.append(tuning)
    channels = pd.concat(parts, ignore_index=True).merge(preds, on=["layer", "channel"], how="left")
    channels = _judge(channels, cfg)
    summary = summarize(channels)
    info = asdict(cfg)
    info.update(stimulus_frames=frames, stimulus_size=stim_size, stimuli=len(motions))
    return VerificationResult(channels=channels, summary=summary, config=info, seconds=time.perf_counter() - start)


def verify_run(
    run_dir: str | Path, config: VerifyConfig | None = None, device: str | torch.device = "cpu"
) -> VerificationResult:
    """:func:`verify_model` on an exported run (``model.safetensors`` + ``model.json``)."""
    exported = load_exported(run_dir, device=device)
    info = exported.info
    result = verify_model(
        exported.model,
        num_frames=info.num_frames,
        size=info.size,
        mean=info.mean,
        std=info.std,
        config=config,
    )
    result.config.update(run=str(run_dir), model=info.model, model_kwargs=info.model_kwargs, classes=info.classes)
    return result
