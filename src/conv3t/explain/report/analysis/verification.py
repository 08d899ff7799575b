"""The report's measurement of its model against stimuli of known motion (:func:`conv3t.verify.verify_model`),
reused from the report folder's store (:mod:`conv3t.verify.store`) when the weights and settings are the same.

Reading the store is part of the analysis; writing it is an artifact (:mod:`conv3t.explain.report.artifacts`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from conv3t.explain.report.options import ReportOptions
from conv3t.explain.report.progress import StepCounter
from conv3t.exported import ModelInfo
from conv3t.verify import VerificationResult, VerifyConfig, verify_model
from conv3t.verify.progress import StageETA
from conv3t.verify.store import STORE_NAME, load_verification, verification_key

__all__ = ["Measured", "measured_verification", "views"]


@dataclass(frozen=True)
class Measured:
    """The verification of the report's model: ``result``, its store ``key`` and ``notes`` on how it was
    obtained (reused, batch sizes; shown under the page's heading)."""

    result: VerificationResult
    key: str
    notes: tuple[str, ...]


def measured_verification(
    model: nn.Module,
    info: ModelInfo,
    options: ReportOptions,
    store: Path | None,
    device: torch.device,
    progress: StepCounter,
) -> Measured:
    """The model's verification at its clip size; reused from the folder ``store`` (None: not looked for) when a
    report of the same weights with the same verification settings stored it there (other ``layers`` /
    ``channels`` / ``top`` do not change it)."""
    config = VerifyConfig(textures=options.verify_textures)
    clip = {"num_frames": info.num_frames, "size": info.size, "mean": info.mean, "std": info.std}
    key = verification_key(model, config=config, **clip)
    if store is not None:
        result, why = load_verification(store, key)
        path = store / STORE_NAME
        if result is not None:
            progress.say(f"reusing the verification stored in {path} (same weights and settings)")
            return Measured(result, key, (f"verification reused from {STORE_NAME} (same weights and settings)",))
        if why.startswith("damaged"):
            message = f"the stored verification {path} is {why}; measuring again"
            warnings.warn(message, stacklevel=2)
            progress.say(f"warning: {message}")
    result = verify_model(
        model,
        **clip,
        config=config,
        device=device,
        max_memory=options.max_memory,
        progress=StageETA(progress.detail),
        notify=progress.say,
    )
    batches = ", ".join(f"{mode} mode {b}" for mode, b in result.config.get("batch_sizes", {}).items())
    note = (
        f"verification: {views(result.config)}, batch size {batches} "
        f"(memory budget {result.config.get('memory_budget')}), measured in {result.seconds:.0f} s"
    )
    return Measured(result, key, (note,))


def views(cfg: dict) -> str:
    """How the stimuli were measured: texture views, and layer mode in closed form (issue 28)."""
    text = f"{cfg.get('textures', '?')} texture views each"
    if cfg.get("layer_energies") == "exact" and "layer" in cfg.get("modes", ()):
        text += " in image mode; in layer mode the expected energies, computed exactly from each kernel"
    return text
