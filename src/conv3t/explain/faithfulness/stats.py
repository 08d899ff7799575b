"""The statistics of the faithfulness checks: rank p-values, exact permutation tables, a sequential Monte-Carlo
stopping rule, and the tests over clips (docs/conventions.md, "Faithfulness").

Every perturbation check compares a statistic of the explanation (an area under a curve, a probability after an
ablation) with the same statistic of random explanations. Its p-value is the rank p-value, one-sided in the
direction the check tests::

    p = (1 + #{random draws at least as good as the explanation}) / (B + 1)

which is valid (``P(p <= a) <= a`` for every ``a``) whenever the explanation is, under the null hypothesis, one
more draw of the same random process. Where every random explanation can be enumerated (all ``T!`` frame orders
of a clip with ``T <= 10`` frames from its ``2^T`` frame-subset probabilities; all channel sets when there are
few) the p-value is exact: the share of all random explanations at least as good.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from conv3t.proportions import binomial_tail

__all__ = [
    "ALPHA",
    "TOLERANCE",
    "RankTest",
    "all_orders",
    "as_good",
    "binomial_tail",
    "exact_test",
    "fisher_combined",
    "holm",
    "rank_test",
    "sequential_test",
]

#: The significance level of every check, fixed before any model was looked at.
ALPHA = 0.05
#: Statistics closer than this count as equal ("at least as good"): different batch sizes change the last bits.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class RankTest:
    """A one-sided rank test of one statistic against random draws.

    Attributes:
        observed: the explanation's statistic.
        random_mean, random_std: of the random draws (all of them, for an exact test).
        draws: random draws compared (for an exact test: every random explanation).
        p_value: the rank p-value (module notes).
        min_p: the smallest p-value any explanation could reach here (its best possible statistic, or
            ``1 / (B + 1)``); the check is *not testable* when ``min_p > ALPHA``.
        exact: True when every random explanation was enumerated.
        best: the best possible statistic (exact tests; None otherwise).
    """

    observed: float
    random_mean: float
    random_std: float
    draws: int
    p_value: float
    min_p: float
    exact: bool
    best: float | None = None

    @property
    def testable(self) -> bool:
        return self.min_p <= ALPHA

    @property
    def method(self) -> str:
        return "exact" if self.exact else "monte-carlo"


def as_good(values: np.ndarray, observed: float, lower: bool) -> np.ndarray:
    """Boolean mask: ``values`` at least as good as ``observed`` (``<=`` when lower is better), to TOLERANCE."""
    return values <= observed + TOLERANCE if lower else values >= observed - TOLERANCE


def rank_test(observed: float, draws: np.ndarray, lower: bool) -> RankTest:
    """The rank p-value of ``observed`` against ``draws (B,)`` random draws (one-sided, ``lower`` = smaller is
    better). If the random draws do not vary and equal the observed value the model did not respond: min_p 1."""
    draws = np.asarray(draws, dtype=np.float64)
    b = draws.size
    p = (1 + int(as_good(draws, observed, lower).sum())) / (b + 1)
    flat = bool(np.all(np.abs(draws - observed) <= TOLERANCE))
    return RankTest(float(observed), float(draws.mean()), _std(draws), b, p, 1.0 if flat else 1 / (b + 1), False)


def exact_test(observed: float, population: np.ndarray, lower: bool) -> RankTest:
    """The exact p-value: the share of the whole ``population`` of random explanations at least as good as
    ``observed`` (the explanation is one of them). ``min_p``: the share at least as good as the best one."""
    population = np.asarray(population, dtype=np.float64)
    best = float(population.min() if lower else population.max())
    p = max(float(as_good(population, observed, lower).mean()), 1 / population.size)
    min_p = float(as_good(population, best, lower).mean())
    return RankTest(float(observed), float(population.mean()), _std(population), population.size, p, min_p, True, best)


def _std(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if x.size > 1 else 0.0


def sequential_test(
    observed: float, draw: Callable[[int], np.ndarray], lower: bool, max_draws: int, hits: int = 10, batch: int = 10
) -> tuple[RankTest, np.ndarray]:
    """Monte-Carlo rank test with Besag and Clifford's (1991) sequential stopping rule.

    Random draws are taken ``batch`` at a time (``draw(n) -> (n,)`` statistics) and walked in order; sampling
    stops at the draw ``l`` where ``hits`` of them have been at least as good as ``observed``, with
    ``p = hits / l``, or after ``max_draws`` draws with the rank p-value ``(1 + g) / (B + 1)``. Clear failures
    stop after about ``hits / p`` draws; an explanation better than chance always gets ``max_draws``. Both
    p-values are valid.

    Returns:
        The test and the draws used, ``(l,)``.
    """
    taken: list[float] = []
    found = 0
    while len(taken) < max_draws:
        values = np.asarray(draw(min(batch, max_draws - len(taken))), dtype=np.float64)
        for v in values:
            taken.append(float(v))
            found += int(as_good(np.array([v]), observed, lower)[0])
            if found >= hits:
                d = np.array(taken)
                flat = bool(np.all(np.abs(d - observed) <= TOLERANCE))
                min_p = 1.0 if flat else 1 / (max_draws + 1)
                return RankTest(float(observed), float(d.mean()), _std(d), d.size, hits / d.size, min_p, False), d
    d = np.array(taken)
    return rank_test(observed, d, lower), d


@lru_cache(maxsize=4)
def all_orders(n: int) -> np.ndarray:
    """``(n!, n)`` int8: every permutation of ``range(n)`` (n <= 10: 3.6 million rows, 36 MB)."""
    if not 1 <= n <= 10:
        raise ValueError(f"all_orders enumerates 1..10 items, got {n}")
    perms = np.zeros((1, 1), dtype=np.int8)
    for k in range(1, n):
        # insert item k at every position of every permutation of 0..k-1
        rows = perms.shape[0]
        out = np.empty((rows * (k + 1), k + 1), dtype=np.int8)
        for pos in range(k + 1):
            block = out[pos * rows : (pos + 1) * rows]
            block[:, :pos] = perms[:, :pos]
            block[:, pos] = k
            block[:, pos + 1 :] = perms[:, pos:]
        perms = out
    return perms


def fisher_combined(p_values: Sequence[float]) -> float:
    """Fisher's combination of independent p-values: ``P(chi2_{2k} >= -2 sum log p)`` (closed form for even
    degrees of freedom). Conservative for discrete p-values (they are super-uniform under the null)."""
    p = [min(max(float(v), 1e-300), 1.0) for v in p_values]
    if not p:
        return float("nan")
    half = -sum(math.log(v) for v in p)  # x / 2
    term, total = 1.0, 1.0
    for i in range(1, len(p)):
        term *= half / i
        total += term
    return float(min(1.0, math.exp(-half) * total))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment over the given p-values (None entries are skipped and stay None)."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None and math.isfinite(p))
    out: list[float | None] = [None] * len(p_values)
    running, m = 0.0, len(known)
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
