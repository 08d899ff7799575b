"""Channel ablation, tested: the credited channels zeroed against random channel sets of the same layers.

A random set has as many channels in each layer as the explanation credits there, drawn uniformly among all the
layer's channels (credited ones included: the null hypothesis is an explanation that picked channels at random).
When there are at most ``max_draws + 1`` such sets (e.g. one channel of 16) every one is evaluated and the
p-value is exact; a check with fewer than ``1 / ALPHA`` possible sets is not testable. Otherwise Monte-Carlo with
Besag and Clifford's sequential stopping rule. The statistic is the target's probability with the set zeroed
(lower is better); its logit is reported beside it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from conv3t.explain.faithfulness import perturb
from conv3t.explain.faithfulness.results import ChannelAblation
from conv3t.explain.faithfulness.stats import exact_test, sequential_test

__all__ = ["channel_ablation"]


def channel_ablation(
    model: nn.Module,
    x: Tensor,
    target: int,
    credited: Mapping[str, list[int]],
    widths: Mapping[str, int],
    before: tuple[float, float],
    generator: torch.Generator,
    *,
    max_draws: int,
    batch_size: int,
) -> ChannelAblation:
    """The ablation of ``credited`` (layer -> channels) on ``x (1, C, T, H, W)``; ``before``: the target's
    probability and logit of the untouched clip."""
    layers = list(credited)

    def keep_masks(sets: list[dict[str, list[int]]]) -> dict[str, Tensor]:
        keep = {name: torch.ones(len(sets), widths[name], dtype=torch.bool) for name in layers}
        for row, chosen in enumerate(sets):
            for name in layers:
                keep[name][row, chosen[name]] = False
        return keep

    mine = perturb.ablated_probabilities(model, x, target, keep_masks([dict(credited)]), batch_size)[0].double()
    possible = math.prod(math.comb(widths[n], len(credited[n])) for n in layers)
    if possible <= max_draws + 1:
        every = [
            dict(zip(layers, (list(c) for c in combo)))
            for combo in itertools.product(
                *(itertools.combinations(range(widths[n]), len(credited[n])) for n in layers)
            )
        ]
        values = perturb.ablated_probabilities(model, x, target, keep_masks(every), batch_size).double().numpy()
        test = exact_test(float(mine[0]), values[:, 0], lower=True)
        logits = values[:, 1]
    else:
        seen: list[np.ndarray] = []

        def draw(n: int) -> np.ndarray:
            sets = [
                {
                    name: torch.randperm(widths[name], generator=generator)[: len(credited[name])].tolist()
                    for name in layers
                }
                for _ in range(n)
            ]
            values = perturb.ablated_probabilities(model, x, target, keep_masks(sets), batch_size).double().numpy()
            seen.append(values[:, 1])
            return values[:, 0]

        test, _ = sequential_test(float(mine[0]), draw, lower=True, max_draws=max_draws, batch=batch_size)
        logits = np.concatenate(seen)[: test.draws]
    return ChannelAblation(
        k=sum(len(c) for c in credited.values()),
        p_before=before[0],
        p_after_credited=float(mine[0]),
        p_after_random_mean=test.random_mean,
        p_after_random_std=test.random_std,
        draws=test.draws,
        test=test,
        logit_before=before[1],
        logit_after_credited=float(mine[1]),
        logit_after_random_mean=float(logits.mean()),
    )
