"""Frame deletion and insertion, tested exactly where that is possible.

A clip with ``T <= exact_frames`` (10) frames has only ``2^T`` distinct frame-deleted clips (256 forward passes
for 8 frames). Their probabilities are a table from which the deletion and the insertion curve of *every* one of
the ``T!`` frame orders follows without another forward pass: the p-value of the explanation's order is then
exact (the share of all orders at least as good), the best possible order (the oracle) is known, and so is the
normalised effect ``(random mean - auc) / (random mean - oracle)``. A clip whose best possible order cannot reach
``p <= ALPHA`` (``T <= 3``, or a model that ignores the frames) is not testable.

Longer clips are tested by Monte-Carlo over random frame orders with Besag and Clifford's sequential stopping
rule (:func:`conv3t.explain.faithfulness.stats.sequential_test`), on curves of ``steps`` equal shares of frames;
the insertion test reuses the deletion test's forward passes (:class:`_DeletionPool`), which halves the frame
checks' cost on long clips.
Ties in the explanation's importance are broken at random (seeded), so a constant importance is a random order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from conv3t.explain.faithfulness import perturb
from conv3t.explain.faithfulness.results import PerturbationCurve
from conv3t.explain.faithfulness.stats import RankTest, all_orders, exact_test, sequential_test

__all__ = ["fixed_order_test", "frame_counts", "frame_curves", "random_order"]


def random_order(scores: Tensor, generator: torch.Generator) -> Tensor:
    """Positions by descending score, ties in random order: ``(n,)`` long."""
    flat = scores.detach().flatten().cpu().double()
    shuffle = torch.randperm(flat.numel(), generator=generator)
    return shuffle[torch.argsort(flat[shuffle], descending=True, stable=True)]


def frame_counts(frames: int, steps: int) -> Tensor:
    """Frames deleted (inserted) after each inner step of a frame curve: ``(S - 1,)`` integers.

    One frame per step (``1, ..., T - 1``; ``S = T``) when the clip has at most ``steps`` frames; otherwise
    ``steps`` equal shares (``round(T * i / steps)``; ``S = steps``). The curve's points sit at the fractions
    actually deleted, ``count / T``."""
    if frames <= steps:
        return torch.arange(1, frames)
    return torch.tensor(sorted({round(frames * i / steps) for i in range(1, steps)}))


def frame_curves(
    model: nn.Module,
    x: Tensor,
    target: int,
    importance: Tensor,
    generator: torch.Generator,
    *,
    max_draws: int,
    steps: int,
    batch_size: int,
    exact_frames: int = 10,
) -> tuple[PerturbationCurve, PerturbationCurve]:
    """Deletion and insertion curves of ``importance (T,)`` on ``x (1, C, T, H, W)``, each with its test."""
    order = random_order(importance, generator)
    if x.shape[2] <= exact_frames:
        return _exact(model, x, target, order, batch_size)
    return _monte_carlo(model, x, target, order, generator, max_draws, steps, batch_size)


def _exact(
    model: nn.Module, x: Tensor, target: int, order: Tensor, batch_size: int
) -> tuple[PerturbationCurve, PerturbationCurve]:
    t = x.shape[2]
    bits = torch.arange(t)
    subsets = (torch.arange(2**t)[:, None] >> bits) & 1 > 0  # row m: the frames of bitmask m deleted
    table = perturb.frame_probabilities(model, x, target, subsets, batch_size).double().numpy()  # (2^T, 2)
    full = 2**t - 1
    fractions = tuple(k / t for k in range(t + 1))
    mine = np.concatenate([[0], np.cumsum(1 << order.numpy())])  # deleted sets along the explanation's order
    out = []
    for insertion in (False, True):
        rows = full ^ mine if insertion else mine
        population = _all_aucs(table[:, 0], t, insertion)
        auc = _auc(table[rows, 0])
        test = exact_test(auc, population, lower=not insertion)
        curve = _curve(test, table[rows, 0], table[rows, 1], fractions, insertion)
        out.append(dataclasses.replace(curve, order=tuple(order.tolist()), subset_table=tuple(table[:, 0].tolist())))
    return out[0], out[1]


def fixed_order_test(curve: PerturbationCurve, order: tuple[int, ...], insertion: bool) -> RankTest | None:
    """The exact test of another frame ``order`` on the clip of an exact ``curve`` (from its subset table, no
    forward pass): e.g. a position-only order. None when the curve has no table."""
    if not curve.subset_table:
        return None
    table = np.asarray(curve.subset_table)
    t = len(order)
    full = 2**t - 1
    sets = np.concatenate([[0], np.cumsum(1 << np.asarray(order, dtype=np.int64))])
    rows = full ^ sets if insertion else sets
    return exact_test(_auc(table[rows]), _all_aucs(table, t, insertion), lower=not insertion)


def _auc(values: np.ndarray, fractions: np.ndarray | None = None) -> float:
    f = np.linspace(0, 1, values.size) if fractions is None else fractions
    return float(((values[1:] + values[:-1]) / 2 * np.diff(f)).sum())


def _all_aucs(p: np.ndarray, t: int, insertion: bool) -> np.ndarray:
    """The AUC of every one of the ``T!`` orders, accumulated step by step (memory: the orders, ``T! x T`` bytes)."""
    orders = all_orders(t)
    full = 2**t - 1
    mask = np.zeros(orders.shape[0], dtype=np.int64)
    total = np.full(orders.shape[0], (p[0] + p[full]) / 2)  # both ends are the same for every order
    for k in range(t - 1):
        mask |= np.left_shift(1, orders[:, k].astype(np.int64))
        total += p[full ^ mask] if insertion else p[mask]
    return total / t


def _curve(
    test: RankTest, probs: np.ndarray, logits: np.ndarray, fractions: tuple[float, ...], insertion: bool
) -> PerturbationCurve:
    sign = 1.0 if insertion else -1.0
    effect = None
    if test.best is not None and abs(test.best - test.random_mean) > 1e-12:
        effect = (test.observed - test.random_mean) / (test.best - test.random_mean)
    elif test.best is None and test.random_std > 0:
        effect = sign * (test.observed - test.random_mean) / test.random_std
    f = np.asarray(fractions)
    return PerturbationCurve(
        auc=test.observed,
        random_auc_mean=test.random_mean,
        random_auc_std=test.random_std,
        rule=perturb.FRAME_RULE,
        curve=tuple(float(v) for v in probs),
        draws=test.draws,
        fractions=fractions,
        logit_curve=tuple(float(v) for v in logits),
        logit_auc=_auc(np.asarray(logits, dtype=np.float64), f),
        test=test,
        effect=effect,
    )


def _monte_carlo(
    model: nn.Module,
    x: Tensor,
    target: int,
    order: Tensor,
    generator: torch.Generator,
    max_draws: int,
    steps: int,
    batch_size: int,
) -> tuple[PerturbationCurve, PerturbationCurve]:
    t = x.shape[2]
    counts = frame_counts(t, steps)
    fractions = np.concatenate([[0.0], counts.double().numpy() / t, [1.0]])
    ends = (
        perturb.frame_probabilities(model, x, target, torch.tensor([[False] * t, [True] * t]), batch_size)
        .double()
        .numpy()
    )

    def curves(orders: Tensor, insertion: bool) -> np.ndarray:
        """``(D, S + 1, 2)`` curves of ``orders (D, T)``."""
        rank = torch.empty_like(orders)
        rank.scatter_(1, orders, torch.arange(t).expand_as(orders).contiguous())
        first = rank[:, None, :] < counts.view(1, -1, 1)  # (D, S - 1, T): the first counts[i] frames
        masks = ~first if insertion else first
        inner = perturb.frame_probabilities(model, x, target, masks.flatten(0, 1), batch_size)
        inner = inner.double().numpy().reshape(orders.shape[0], len(counts), 2)
        start, end = (ends[1], ends[0]) if insertion else (ends[0], ends[1])
        n = orders.shape[0]
        return np.concatenate([np.broadcast_to(start, (n, 1, 2)), inner, np.broadcast_to(end, (n, 1, 2))], 1)

    symmetric = bool(torch.equal(counts, t - counts.flip(0)))
    pool = _DeletionPool(lambda n: torch.stack([torch.randperm(t, generator=generator) for _ in range(n)]), curves)
    out = []
    for insertion in (False, True):
        mine = curves(order[None], insertion)[0]
        auc = _auc(mine[:, 0], fractions)

        def draw(n: int, insertion: bool = insertion) -> np.ndarray:
            if not insertion:
                c = pool.take(n)
            elif symmetric:  # the reversed orders' insertion curves: their deletion curves read backwards
                c = pool.take(n)[:, ::-1]
            else:
                c = curves(pool.orders(n), True)[:, :, 0]
            return ((c[:, 1:] + c[:, :-1]) / 2 * np.diff(fractions)).sum(1)

        pool.rewind()
        test, _ = sequential_test(auc, draw, lower=not insertion, max_draws=max_draws, batch=batch_size)
        out.append(_curve(test, mine[:, 0], mine[:, 1], tuple(float(f) for f in fractions), insertion))
    return out[0], out[1]


class _DeletionPool:
    """Random frame orders and their deletion curves, computed once and handed out again from the start.

    The insertion curve of an order is its reverse's deletion curve read backwards (inserting the first ``c``
    frames of ``rev(o)`` deletes the first ``T - c`` of ``o``), and the reverse of a uniformly random order is
    one too. So the insertion test's random draws are the deletion test's orders reversed, at no forward pass,
    when the curve's counts are symmetric (``c`` and ``T - c`` both steps). Each test on its own still compares
    the explanation with independent uniformly random orders; the two tests share draws, which Holm's correction
    across checks allows (it holds under any dependence).
    """

    def __init__(self, new_orders: Callable[[int], Tensor], curves: Callable[[Tensor, bool], np.ndarray]) -> None:
        self._new_orders, self._curves = new_orders, curves
        self._orders: list[Tensor] = []
        self._deletion: list[np.ndarray] = []
        self._at = 0

    def rewind(self) -> None:
        self._at = 0

    def orders(self, n: int) -> Tensor:
        """The next ``n`` orders ``(n, T)``, drawing new ones past the end of the pool."""
        missing = self._at + n - len(self._orders)
        if missing > 0:
            self._orders.extend(self._new_orders(missing))
        out = torch.stack(self._orders[self._at : self._at + n])
        self._at += n
        return out

    def take(self, n: int) -> np.ndarray:
        """Deletion curves ``(n, S + 1)`` of the next ``n`` orders (cached)."""
        start = self._at
        orders = self.orders(n)
        have = len(self._deletion)
        if start + n > have:
            self._deletion.extend(self._curves(orders[have - start :], False)[:, :, 0])
        return np.stack(self._deletion[start : start + n])
