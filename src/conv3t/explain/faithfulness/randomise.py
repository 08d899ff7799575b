"""The sanity check of Adebayo et al. (2018), "model-parameter randomisation", cascading from the top.

The layer groups of a model are its top-level children that hold parameters and run in the forward pass
(descending through a single wrapping child), the last one (nearest the output) first. Step ``k`` randomises
groups ``1..k`` of a deep copy of the model (never the caller's model) and recomputes the explanation; the
Spearman rank correlation with the explanation of the trained model says how much of the explanation survived.

Randomising a group replaces every parameter tensor in it by independent Gaussian draws with that tensor's own
mean and standard deviation: activations keep their scale (the network neither saturates nor goes silent)
while every learned pattern is gone. Buffers (BatchNorm's running statistics) are kept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from conv3t.explain.faithfulness.results import Explanation, RandomisationStep

__all__ = ["Explainer", "default_layer_groups", "randomisation_cascade", "randomise_", "spearman"]

#: ``explainer(model, clip (1, C, T, H, W), target) -> Explanation`` with the fields to compare filled.
Explainer = Callable[[nn.Module, Tensor, int], Explanation]


def spearman(a: Tensor | None, b: Tensor | None) -> float:
    """Spearman rank correlation of two equally long score arrays (ties get their mean rank); NaN when either
    is missing or constant."""
    if a is None or b is None:
        return float("nan")
    x = a.detach().double().flatten().cpu().numpy()
    y = b.detach().double().flatten().cpu().numpy()
    if x.shape != y.shape:
        raise ValueError(f"cannot correlate {x.shape[0]} scores with {y.shape[0]}")
    rx = pd.Series(x).rank(method="average").to_numpy()
    ry = pd.Series(y).rank(method="average").to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def default_layer_groups(model: nn.Module, ran: set[str] | None = None) -> list[str]:
    """Qualified names of the model's layer groups, top (output side) first (module notes).

    ``ran``: names of modules seen running in a forward pass; groups not among them (e.g. auxiliary heads that
    only run in training) are left out. None keeps every group.
    """
    prefix, root = "", model
    while True:
        children = [(n, m) for n, m in root.named_children() if any(True for _ in m.parameters())]
        if len(children) == 1 and any(True for _ in children[0][1].children()):
            prefix, root = f"{prefix}{children[0][0]}.", children[0][1]
            continue
        break
    names = [prefix + n for n, _ in children]
    if ran is not None:
        names = [n for n in names if n in ran]
    return names[::-1]


def randomise_(module: nn.Module, generator: torch.Generator) -> None:
    """Replace every parameter of ``module`` in place by Gaussian draws with its own mean and std (module
    notes). Conv3T kernel caches are dropped."""
    with torch.no_grad():
        for p in module.parameters():
            values = p.detach().float()
            mean, std = float(values.mean()), float(values.std()) if p.numel() > 1 else 0.0
            draw = torch.randn(p.shape, generator=generator) * std + mean
            p.copy_(draw.to(p))
    for m in module.modules():
        clear = getattr(m, "clear_kernel_cache", None)
        if callable(clear):
            clear()


def _channel_vector(explanation: Explanation, layers: Sequence[str]) -> Tensor | None:
    scores = explanation.channel_scores
    if not scores or any(name not in scores for name in layers):
        return None
    return torch.cat([scores[name].detach().flatten().cpu() for name in layers])


def randomisation_cascade(
    model: nn.Module,
    clip: Tensor,
    target: int,
    explainer: Explainer,
    groups: Sequence[str],
    generator: torch.Generator,
) -> tuple[RandomisationStep, ...]:
    """Randomise ``groups`` of a copy of ``model`` one after the other and compare the explanations.

    Args:
        model: the trained model (not changed: the cascade runs on a deep copy, in eval mode).
        clip: ``(1, C, T, H, W)`` on the model's device.
        explainer: recomputes the explanation (Grad-CAM, frame importance, channel scores) on a model.
        groups: module names, in the order to randomise them (top first).

    Returns:
        One :class:`RandomisationStep` per group, each listing every group randomised so far.
    """
    copied = copy.deepcopy(model).eval()
    reference = explainer(copied, clip, target)
    layers = sorted(reference.channel_scores or {})
    ref_channels = _channel_vector(reference, layers)
    steps, done = [], []
    for name in groups:
        randomise_(copied.get_submodule(name), generator)
        done.append(name)
        now = explainer(copied, clip, target)
        steps.append(
            RandomisationStep(
                layers_randomised=tuple(done),
                gradcam_rank_corr=spearman(reference.gradcam, now.gradcam),
                frame_importance_rank_corr=spearman(reference.frame_importance, now.frame_importance),
                channel_rank_corr=spearman(ref_channels, _channel_vector(now, layers)),
            )
        )
    del copied
    return tuple(steps)
