"""Range checks of the training-protocol keys (plateau schedule, class weights, early stopping).

Kept apart from :mod:`conv3t.train.config`, which checks types and names; every error names its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conv3t.train.config import ConfigError

__all__ = ["check_protocol"]


def check_protocol(cfg: Mapping[str, Any], source: str) -> None:
    """Ranges of the plateau schedule, class weights and early stopping keys (each error names its key)."""
    sched, stop = cfg["sched"], cfg["early_stop"]
    every = sched["plateau_every_n_epochs"]
    for key, value, low in (
        ("sched.plateau_every_n_epochs", every, 1),
        ("sched.plateau_patience", sched["plateau_patience"], 0),
        ("sched.plateau_threshold", sched["plateau_threshold"], 0),
        ("early_stop.patience", stop["patience"], 0),
        ("early_stop.min_delta", stop["min_delta"], 0),
        ("early_stop.check_from_epoch", stop["check_from_epoch"], 0),
        ("early_stop.check_every_n_epochs", stop["check_every_n_epochs"], 1),
        ("early_stop.collapse_epochs", stop["collapse_epochs"], 0),
    ):
        if value < low:
            raise ConfigError(f"{source}: {key} must be >= {low}, got {value}")
    if sched["plateau_patience"] % every:
        raise ConfigError(
            f"{source}: sched.plateau_patience ({sched['plateau_patience']} epochs) must be a multiple of "
            f"sched.plateau_every_n_epochs ({every}): the rate can only change at a check"
        )
    if not 0 < sched["plateau_factor"] < 1:
        raise ConfigError(f"{source}: sched.plateau_factor must be in (0, 1), got {sched['plateau_factor']}")
    if not 0 < stop["collapse_fraction"] <= 1:
        raise ConfigError(f"{source}: early_stop.collapse_fraction must be in (0, 1], got {stop['collapse_fraction']}")
    weights = cfg["loss"]["class_weights"]
    if isinstance(weights, str) and weights != "inverse_frequency":
        raise ConfigError(
            f"{source}: loss.class_weights must be null, 'inverse_frequency' or a list of numbers, got {weights!r}"
        )
    if isinstance(weights, list) and not all(
        isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights
    ):
        raise ConfigError(f"{source}: loss.class_weights must hold numbers >= 0, got {weights!r}")
