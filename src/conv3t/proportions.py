"""Binomial proportions: how surprising ``k`` successes of ``n`` are, and what they say about the rate.

One definition for the verification (channels agreeing with their parameters), the faithfulness summary (clips
passing a check) and the experiments that measure pass rates; it imports nothing else of the package, so every
layer can use it.
"""

from __future__ import annotations

import math

__all__ = ["binomial_tail", "wilson_interval"]


def binomial_tail(successes: int, trials: int, p: float) -> float:
    """``P(X >= successes)`` for ``X ~ Binomial(trials, p)`` (exact sum; 1.0 for ``successes <= 0``)."""
    if trials < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"need trials >= 0 and 0 <= p <= 1, got {trials}, {p}")
    total = sum(math.comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(max(successes, 0), trials + 1))
    return float(min(1.0, total))


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (default 95 %): ``(low, high)`` in ``[0, 1]``;
    ``(0, 1)`` for no trials. Fewer trials give a wider interval."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}, {trials}")
    q, n = successes / trials, trials
    centre = (q + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(q * (1 - q) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
