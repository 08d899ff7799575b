"""The statistics of the sanity tests (model-parameter randomisation, parameter families, random logit): one rule
for all three, with the draws taken one at a time and stopped as soon as the verdict is settled.

A sanity test compares the explanation of the trained model (the *reference*) with up to ``K`` *draws*: the
explanations of independently randomised copies (the cascade; each parameter family of a 3T network), or of
``K`` distinct other classes drawn uniformly without replacement (random logit). For each explanation kind
(frames, channels, a map's coarse cells: :func:`items`) ``c_k`` is the Spearman correlation of the reference
with draw ``k``. The explanation *survives* (the check fails) only when both

* the mean ``r`` of the ``c_k`` is above the *item null*: the same statistic with each draw's items in a random
  order (999 permutations up to 50 items, else the normal limit), and
* the *sequential sign test* rejects: ``L`` = the number of leading draws with ``c_k > 0``, ``p_sign = 2^-L``.

``p`` is the larger of the two; the smallest reachable is ``2^-K`` (``min_p``), so ``K < 5`` is not testable at
``ALPHA`` 0.05. The sign test is valid without assuming that ``c_k`` is symmetric about 0: under
``H0: P(c_k > 0) <= 1/2`` with independent draws, ``P(L >= m) <= 2^-m``. That is why it replaces the earlier
sign-flip test of the mean (which needs symmetry): a family randomised around its own mean, or another class's
explanation, has no reason to be symmetric. With ``K = 5`` both reject exactly when all five ``c_k`` are positive,
so the cascade's verdicts are unchanged. The item null alone is far too narrow when the draws share structure
(each random model's frame attribution is the clip's pattern up to a sign: ``c_k`` near +-1, issue 24).

*Early stopping*: draw ``k + 1`` is computed only while some kind is still "all positive so far"; each kind's
statistics (``r``, the item null, the absolute variant, ``seed_corrs``) use its own draws up to and including its
first non-positive one (``draws_used``). Once a ``c_k <= 0`` the verdict is fixed (``p_sign >= 2^-(K-1)``), so
stopping changes no pass or fail (a draw after the stop that would have been constant, and so made the check
undefined, is not taken); an explanation that depends on what is randomised stops after about two draws. A
kind that is constant on the reference or on a draw is undefined (not a pass).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from conv3t.explain.faithfulness.results import RandomisationTest
from conv3t.explain.methods.explanation import KINDS, Explanation

__all__ = ["KINDS", "items", "randomisation_tests", "sequential_sign_p", "sequential_tests", "spearman"]

PERMUTATIONS = 999


def spearman(a: Tensor | None, b: Tensor | None) -> float:
    """Spearman rank correlation of two equally long score arrays (ties get their mean rank); NaN when either
    is missing or constant."""
    if a is None or b is None:
        return float("nan")
    x, y = _ranks(a), _ranks(b)
    if x.shape != y.shape:
        raise ValueError(f"cannot correlate {x.shape[0]} scores with {y.shape[0]}")
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _c(ref: Tensor, other: Tensor) -> float:
    """``c_k`` by the formula :func:`_variant` uses (:func:`_z`), so that stopping and testing agree on its sign;
    NaN when either is constant."""
    x, y = _z(ref), _z(other)
    if x is None or y is None:
        return float("nan")
    return float(x @ y / x.size)


def _ranks(x: Tensor) -> np.ndarray:
    return pd.Series(x.detach().double().flatten().cpu().numpy()).rank(method="average").to_numpy()


def _z(x: Tensor) -> np.ndarray | None:
    """The z-scores of ``x``'s ranks (population std): the correlation of two is their mean product; None when
    ``x`` is constant."""
    r = _ranks(x)
    return None if r.std() == 0 else (r - r.mean()) / r.std()


def channel_vector(explanation: Explanation, layers: Sequence[str]) -> Tensor | None:
    """The channel scores of ``layers`` in one vector (None when a layer is missing)."""
    scores = explanation.channel_scores
    if not scores or any(name not in scores for name in layers):
        return None
    return torch.cat([scores[name].detach().flatten().cpu() for name in layers])


def items(explanation: Explanation, kind: str, layers: Sequence[str], coarse: tuple[int, ...] | None) -> Tensor | None:
    """The scores whose ranks are compared: frames ``(T,)``, channels, or a map's cells at its own coarse
    resolution ``coarse = (T', H', W')`` (neighbouring pixels of an upsampled map are not separate items;
    None: every pixel is an item)."""
    if kind == "frame_importance":
        return explanation.frame_importance
    if kind == "channels":
        return channel_vector(explanation, layers)
    cam = explanation.gradcam
    if cam is None or coarse is None:
        return cam
    return F.adaptive_avg_pool3d(cam.detach().double()[None, None].cpu(), coarse)[0, 0]


def sequential_sign_p(corrs: Sequence[float]) -> float:
    """``2^-L``, ``L`` the number of leading values that are > 0 (NaN is not): valid for independent draws with
    ``P(c > 0) <= 1/2`` each, whatever their distribution (module notes)."""
    leading = 0
    for c in corrs:
        if not c > 0:
            break
        leading += 1
    return 2.0**-leading


def sequential_tests(
    reference: Explanation,
    draw: Callable[[int, frozenset[str]], Explanation],
    draws: int,
    coarse: tuple[int, ...] | None,
    generator: torch.Generator,
    stop_early: bool = True,
) -> tuple[RandomisationTest, ...]:
    """The sanity test of each explanation kind present in ``reference`` (module notes).

    Args:
        reference: the trained model's explanation of the target.
        draw: ``draw(k, kinds)`` gives draw ``k``'s explanation (``k = 0, 1, ...``) with at least the ``kinds``
            still open filled (the others may be None: their tests no longer read them); called at most ``draws``
            times, in order, and only while some kind is still positive in every draw so far (``stop_early``).
        draws: ``K``, the most draws; ``min_p = 2^-K``.
        coarse: the map's own resolution ``(T', H', W')`` (None: every pixel is an item).
        generator: seeds the item null's permutations (one number per kind, whatever is stopped).
        stop_early: False takes all ``K`` draws for every kind (same verdicts; for comparison).
    """
    layers = sorted(reference.channel_scores or {})
    seeds = {kind: int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) for kind in KINDS}
    refs = {kind: items(reference, kind, layers, coarse) for kind in KINDS}
    seen: dict[str, list[Tensor | None]] = {kind: [] for kind, ref in refs.items() if ref is not None}
    going = set(seen)
    for k in range(draws):
        if not going:
            break
        explanation = draw(k, frozenset(going))
        for kind in sorted(going):
            scores = items(explanation, kind, layers, coarse)
            seen[kind].append(scores)
            if scores is None or (stop_early and not _c(refs[kind], scores) > 0):
                going.discard(kind)
    out = []
    for kind, others in seen.items():
        if others and all(o is not None for o in others):
            rng = np.random.default_rng(seeds[kind])
            out.append(_test(kind, refs[kind], others, draws, rng))  # type: ignore[arg-type]
    return tuple(out)


def randomisation_tests(
    reference: Explanation,
    randomised: Sequence[Explanation],
    coarse: tuple[int, ...] | None,
    generator: torch.Generator,
) -> tuple[RandomisationTest, ...]:
    """:func:`sequential_tests` of ``reference`` against every explanation in ``randomised`` (no stopping)."""
    return sequential_tests(
        reference, lambda k, _kinds: randomised[k], len(randomised), coarse, generator, stop_early=False
    )


def _test(kind: str, ref: Tensor, others: list[Tensor], draws: int, rng: np.random.Generator) -> RandomisationTest:
    """The signed test (it decides) with the absolute variant beside it (module notes)."""
    min_p = max(2.0**-draws, 1 / (PERMUTATIONS + 1))
    signed = _variant(ref, others, rng)
    if signed is None:
        constant = sum(_z(t) is None for t in (ref, *others))
        return RandomisationTest(
            kind, float("nan"), float("nan"), None, draws, constant, min_p=min_p, draws_used=len(others)
        )
    trained, null_corr, p, corrs = signed
    absolute = _variant(ref.abs(), [o.abs() for o in others], rng)
    return RandomisationTest(
        kind, trained, null_corr, p, draws, 0,
        seed_corrs=tuple(corrs),
        min_p=min_p,
        absolute_corr=absolute[0] if absolute else float("nan"),
        absolute_p=absolute[2] if absolute else None,
        draws_used=len(others),
    )  # fmt: skip


def _variant(
    ref: Tensor, others: list[Tensor], rng: np.random.Generator
) -> tuple[float, float, float, list[float]] | None:
    """``(r, null_corr, p, c_k)`` of ``ref`` against ``others``; None when any of them is constant."""
    scored = [_z(ref), *(_z(o) for o in others)]
    if any(v is None for v in scored):
        return None
    z: list[np.ndarray] = scored  # type: ignore[assignment]
    n = z[0].size
    corrs = [float(z[0] @ o / n) for o in z[1:]]
    trained = float(np.mean(corrs))
    pairs = [z[i] @ z[j] / n for i in range(1, len(z)) for j in range(i + 1, len(z))]
    null_corr = float(np.mean(pairs)) if pairs else float("nan")
    p = _null_p(trained, np.stack(z[1:]), z[0], rng)
    return trained, null_corr, max(p, sequential_sign_p(corrs)), corrs


def _null_p(trained: float, randomised: np.ndarray, reference: np.ndarray, rng: np.random.Generator) -> float:
    """``P(null >= trained)`` for the mean correlation of ``reference (n,)`` with ``randomised (K, n)`` whose
    items are put in random orders: by 999 permutations for up to 50 items, else by the normal limit (mean 0,
    variance ``1 / (K (n - 1))``, exact moments of a permutation correlation)."""
    k, n = randomised.shape
    if n > 50:
        return 0.5 * math.erfc(trained * math.sqrt(k * (n - 1)) / math.sqrt(2))
    perms = np.argsort(rng.random((PERMUTATIONS, k, n)), axis=2)
    null = (np.take_along_axis(np.broadcast_to(randomised, perms.shape), perms, 2) @ reference).mean(1) / n
    return (1 + int((null >= trained - 1e-12).sum())) / (PERMUTATIONS + 1)
