"""Spatial deletion, tested against random maps matched to the explanation's own resolution.

A Grad-CAM is computed at a layer's coarse resolution ``(T', H', W')`` and upsampled (trilinear): it removes
blobs, and ROAD's imputation fills a blob worse than scattered pixels. Random *pixel* orders would therefore
favour any smooth map, informative or not. The random maps here are drawn where the explanation was made:
Gaussian noise at ``(T', H', W')``, rectified (as Grad-CAM is), upsampled the same way; ties (the rectified
zeros) are broken at random in both.

Each map gives two curves at the fractions :data:`FRACTIONS` (log-spaced early, where a sharp map does its
work): pixels removed most relevant first (MoRF) and least relevant first (LeRF). The statistic is the
symmetric relevance gain ``AUC(LeRF) - AUC(MoRF)`` (higher is better: the map's top pixels matter and its bottom
ones do not), tested by Monte-Carlo with Besag and Clifford's sequential stopping rule.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.explain.faithfulness import perturb
from conv3t.explain.faithfulness.frames import random_order
from conv3t.explain.faithfulness.results import PerturbationCurve
from conv3t.explain.faithfulness.stats import sequential_test

__all__ = ["FRACTIONS", "random_map", "spatial_curve"]

#: The fractions of pixel positions removed at the points of a spatial curve.
FRACTIONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


def random_map(coarse: tuple[int, int, int], size: tuple[int, int, int], generator: torch.Generator) -> Tensor:
    """A random map drawn at ``coarse`` ``(T', H', W')``, rectified and upsampled (trilinear) to ``size``."""
    noise = torch.randn(1, 1, *coarse, generator=generator).clamp_min(0)
    if tuple(coarse) == tuple(size):
        return noise[0, 0]
    return F.interpolate(noise, size=size, mode="trilinear", align_corners=False)[0, 0]


def spatial_curve(
    model: nn.Module,
    x: Tensor,
    target: int,
    cam: Tensor,
    coarse: tuple[int, int, int],
    noise_std: Tensor,
    generator: torch.Generator,
    *,
    max_draws: int,
    batch_size: int,
) -> tuple[PerturbationCurve, float]:
    """The spatial check of ``cam (T, H, W)`` on ``x (1, C, T, H, W)``; also the largest ROAD residual."""
    size = tuple(cam.shape)
    positions = cam.numel()
    counts = [round(positions * f) for f in FRACTIONS[1:-1]]
    fractions = np.array([0.0, *(c / positions for c in counts), 1.0])
    ends = perturb.frame_probabilities(model, x, target, torch.zeros(1, x.shape[2], dtype=torch.bool), batch_size)
    ends = ends.double().numpy()[0]
    # with every pixel removed each frame is the clip's mean colour (plus noise): the same for every order
    all_gone, worst = perturb.spatial_probabilities(
        model, x, target, torch.arange(positions)[None], [positions], batch_size, generator, noise_std
    )
    last = all_gone.double().numpy()[0, 0]
    residuals = [worst]

    def curves(maps: list[Tensor]) -> np.ndarray:
        """``(D, 2, S + 1, 2)``: MoRF and LeRF curves (probability, logit) of each map."""
        orders = torch.stack([random_order(m, generator) for m in maps])
        both = torch.cat([orders, orders.flip(1)])  # LeRF: the same order from the other end
        inner, res = perturb.spatial_probabilities(model, x, target, both, counts, batch_size, generator, noise_std)
        residuals.append(res)
        inner = inner.double().numpy().reshape(2, len(maps), len(counts), 2).transpose(1, 0, 2, 3)
        n = len(maps)
        start = np.broadcast_to(ends, (n, 2, 1, 2))
        end = np.broadcast_to(last, (n, 2, 1, 2))
        return np.concatenate([start, inner, end], 2)

    random_morf: list[float] = []

    def gain(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        auc = ((c[..., 1:, 0] + c[..., :-1, 0]) / 2 * np.diff(fractions)).sum(-1)  # (D, 2)
        return auc[:, 1] - auc[:, 0], auc[:, 0]  # (D,) gain, (D,) MoRF area

    mine = curves([cam.detach().cpu()])
    observed = float(gain(mine)[0][0])

    def draw(n: int) -> np.ndarray:
        srg, morf = gain(curves([random_map(coarse, size, generator) for _ in range(n)]))
        random_morf.extend(morf.tolist())
        return srg

    test, _ = sequential_test(observed, draw, lower=False, max_draws=max_draws, batch=max(1, batch_size // 4))
    morf, lerf = mine[0, 0], mine[0, 1]
    auc = float(((morf[1:, 0] + morf[:-1, 0]) / 2 * np.diff(fractions)).sum())
    effect = observed - test.random_mean  # gain beyond the random maps', in probability x fraction units
    morf_random = np.array(random_morf[: test.draws])
    curve = PerturbationCurve(
        auc=auc,
        random_auc_mean=float(morf_random.mean()),
        random_auc_std=float(morf_random.std(ddof=1)) if morf_random.size > 1 else 0.0,
        rule=perturb.SPATIAL_RULE,
        curve=tuple(float(v) for v in morf[:, 0]),
        draws=test.draws,
        fractions=tuple(float(f) for f in fractions),
        logit_curve=tuple(float(v) for v in morf[:, 1]),
        logit_auc=float(((morf[1:, 1] + morf[:-1, 1]) / 2 * np.diff(fractions)).sum()),
        lerf_curve=tuple(float(v) for v in lerf[:, 0]),
        test=test,
        statistic="AUC(LeRF) - AUC(MoRF)",
        effect=effect,
    )
    return curve, max(residuals)
