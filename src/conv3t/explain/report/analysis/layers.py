"""Which layers and channels the report explains.

Layers: those with a temporal extent (:func:`conv3t.explain.methods.temporal_layers`: every Conv3T and Conv3d
whose kernel spans more than one frame), by default the first, middle and last. Channels: by default the most
transformed of each layer (3T: :func:`conv3t.explain.rank_channels`; 3D: the largest relative change between
consecutive kernel slices, :func:`kernel_variation`). Errors name the argument (``layers``, ``channels``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from torch import nn

from conv3t.explain.methods.layers import temporal_layers
from conv3t.explain.report.options import OptionError
from conv3t.nn import Conv3T

__all__ = ["choose_channels", "kernel_variation", "select_layers"]

DEFAULT_NUM_LAYERS = 3


def select_layers(model: nn.Module, layers: Sequence[str] | None, count: int = DEFAULT_NUM_LAYERS) -> list[str]:
    """The layers to explain: ``layers`` checked against the model, or the first, middle and last temporal layer."""
    candidates = temporal_layers(model)
    if layers:
        convs = {n for n, m in model.named_modules() if isinstance(m, (Conv3T, nn.Conv3d))}
        bad = [name for name in layers if name not in convs]
        if bad:
            raise OptionError(
                "layers",
                f" {', '.join(bad)}: not a convolution of this model; temporal layers are: " + ", ".join(candidates),
            )
        return list(dict.fromkeys(layers))
    if not candidates:
        raise ValueError("the model has no Conv3T or Conv3d layer with temporal depth > 1 to explain")
    if len(candidates) <= count:
        return candidates
    idx = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return [candidates[i] for i in dict.fromkeys(idx.tolist())]


def kernel_variation(module: nn.Module) -> np.ndarray:
    """Per output channel of a Conv3d: sum over t of ``||K_{t+1} - K_t|| / ||K||`` (how much the kernel changes)."""
    w = module.weight.detach().double()  # (out, in, D, kH, kW)
    steps = (w[:, :, 1:] - w[:, :, :-1]).transpose(1, 2).flatten(2).norm(dim=2).sum(1)  # (out, D-1) -> (out,)
    return (steps / w.flatten(1).norm(dim=1).clamp_min(1e-12)).cpu().numpy()


def choose_channels(
    model: nn.Module,
    layers: Sequence[str],
    channels: Sequence[int] | None,
    ranking: pd.DataFrame | None,
    count: int,
) -> dict[str, list[int]]:
    """``{layer: channels}``: ``channels`` (checked) for every layer, or the ``count`` top-ranked channels."""
    modules = dict(model.named_modules())
    chosen: dict[str, list[int]] = {}
    ranked = set(ranking["layer"]) if ranking is not None else set()
    for name in layers:
        n_out = modules[name].out_channels
        if channels:
            bad = [c for c in channels if not 0 <= c < n_out]
            if bad:
                raise OptionError("channels", f" {bad}: layer {name} has channels 0..{n_out - 1}")
            chosen[name] = list(dict.fromkeys(int(c) for c in channels))
        elif ranking is not None and name in ranked:
            rows = ranking[ranking["layer"] == name]
            # dead channels and channels whose slices never meet the clip are not picked
            rows = rows[~rows["dead"].astype(bool) & (rows["steps_in_clip"] > 0)]
            chosen[name] = rows["channel"].head(count).astype(int).tolist()
        else:
            order = np.argsort(-kernel_variation(modules[name]), kind="stable")
            chosen[name] = order[:count].astype(int).tolist()
    return chosen
