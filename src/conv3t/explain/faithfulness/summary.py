"""The checks over a dataset: :func:`summarise` (``Faithfulness.summarise``).

Per check: the clips it ran on, those where it was testable, those passing at ``ALPHA``, and one test over the
clips: Fisher's combination of the per-clip p-values (valid for the discrete, super-uniform rank p-values;
conservative). Its p-values are Holm-corrected across all checks summarised. For a faithfulness check a small
combined p-value is evidence that the explanations point at what matters to the model; for a sanity check
(randomisation) it is evidence that the explanations *survive* the randomisation of the weights (the check fails
over the clips). ``binomial_p``: how surprising the count of passing clips is when each passes with probability
``ALPHA`` (faithfulness checks).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conv3t.explain.faithfulness.frames import fixed_order_test
from conv3t.explain.faithfulness.results import FaithfulnessResult, _opt
from conv3t.explain.faithfulness.stats import ALPHA, binomial_tail, fisher_combined, holm

__all__ = ["CheckSummary", "FaithfulnessSummary", "summarise"]


@dataclass(frozen=True)
class CheckSummary:
    """One check over the clips (module notes). ``holds``: the check's verdict over the clips at ALPHA after
    the Holm correction (faithfulness: the explanations beat chance; sanity: they depend on the weights);
    None when no clip was testable."""

    check: str
    kind: str
    clips: int
    tested: int
    passed: int
    combined_p: float | None
    holm_p: float | None
    binomial_p: float | None
    median_effect: float | None

    @property
    def holds(self) -> bool | None:
        if self.holm_p is None:
            return None
        significant = self.holm_p <= ALPHA
        return significant if self.kind == "faithfulness" else not significant

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "kind": self.kind,
            "clips": self.clips,
            "tested": self.tested,
            "passed": self.passed,
            "combined_p": _opt(self.combined_p),
            "holm_p": _opt(self.holm_p),
            "binomial_p": _opt(self.binomial_p),
            "median_effect": _opt(self.median_effect),
            "holds": self.holds,
        }


@dataclass(frozen=True)
class FaithfulnessSummary:
    """Every check over the clips, faithfulness checks first; ``alpha`` the level used. ``position_only``: the
    frame checks of one fixed order that ignores the clip (frames by their mean rank in the explanations over
    the clips), tested on each clip's exact table: how far position alone gets (a baseline, not in the Holm
    correction; empty without exact frame tests of equally long clips)."""

    alpha: float
    checks: tuple[CheckSummary, ...]
    position_only: tuple[CheckSummary, ...] = ()

    def check(self, name: str) -> CheckSummary | None:
        return next((c for c in self.checks if c.check == name), None)

    def to_json(self) -> dict[str, Any]:
        """The ``faithfulness_summary`` object of ``predictions.json``."""
        return {
            "alpha": self.alpha,
            "combined_test": "Fisher's combination of the per-clip p-values, Holm-corrected across checks",
            "checks": [c.to_json() for c in self.checks],
            "position_only": [c.to_json() for c in self.position_only],
        }


def summarise(results: Sequence[FaithfulnessResult]) -> FaithfulnessSummary:
    """Summarise :meth:`Faithfulness.evaluate` results of many clips, check by check (module notes)."""
    names: list[tuple[str, str]] = []
    for r in results:
        for v in r.verdicts:
            if (v.check, v.kind) not in names:
                names.append((v.check, v.kind))
    names.sort(key=lambda n: n[1] != "faithfulness")
    rows = []
    for check, kind in names:
        verdicts = [v for r in results if (v := r.verdict(check)) is not None]
        tested = [v for v in verdicts if v.passed is not None and v.p_value is not None]
        passed = sum(bool(v.passed) for v in tested)
        combined = fisher_combined([v.p_value for v in tested]) if tested else None  # type: ignore[misc]
        effects = [v.effect for v in tested if v.effect is not None]
        binomial = binomial_tail(passed, len(tested), ALPHA) if tested and kind == "faithfulness" else None
        median = statistics.median(effects) if effects else None
        rows.append([check, kind, len(verdicts), len(tested), passed, combined, None, binomial, median])
    for row, corrected in zip(rows, holm([row[5] for row in rows])):
        row[6] = corrected
    return FaithfulnessSummary(ALPHA, tuple(CheckSummary(*row) for row in rows), _position_only(results))


def _position_only(results: Sequence[FaithfulnessResult]) -> tuple[CheckSummary, ...]:
    curves = [(r.frame_deletion, r.frame_insertion) for r in results]
    usable = [(d, i) for d, i in curves if d is not None and i is not None and d.subset_table and i.subset_table]
    if len(usable) < 2 or len({len(d.order) for d, _ in usable}) != 1:
        return ()
    t = len(usable[0][0].order)
    mean_rank = np.zeros(t)
    for d, _ in usable:
        mean_rank[list(d.order)] += np.arange(t)
    order = tuple(int(f) for f in np.argsort(mean_rank, kind="stable"))
    out = []
    for index, (check, insertion) in enumerate((("frame_deletion", False), ("frame_insertion", True))):
        tests = [fixed_order_test(pair[index], order, insertion) for pair in usable]
        tested = [t_ for t_ in tests if t_ is not None and t_.testable]
        passed = sum(t_.p_value <= ALPHA for t_ in tested)
        combined = fisher_combined([t_.p_value for t_ in tested]) if tested else None
        name = f"{check}_position_only {order}"
        out.append(CheckSummary(name, "baseline", len(usable), len(tested), passed, combined, None, None, None))
    return tuple(out)
