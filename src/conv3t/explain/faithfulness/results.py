"""The typed values of the faithfulness checks: what goes in (:class:`Explanation`) and what comes out
(:class:`FaithfulnessResult` and its parts), with the ``predictions.json`` form of each (docs/conventions.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = [
    "ChannelAblation",
    "Explanation",
    "FaithfulnessResult",
    "PerturbationCurve",
    "RandomisationStep",
    "Verdict",
]


@dataclass(frozen=True)
class Explanation:
    """One clip's explanation of one target class, in any method's terms.

    Attributes:
        channels: layer name (``model.named_modules()``) -> the channels the explanation credits in that
            layer's output (channel = dimension 1 of the output ``(N, C, ...)``).
        frame_importance: ``(T,)`` importance of each input frame (larger = more important; any scale).
        gradcam: ``(T, H, W)`` importance of each input pixel position (larger = more important; any scale).
        channel_scores: layer name -> ``(C,)`` a score for every channel of the layer (e.g. the attribution the
            credited channels were picked by); only the randomisation check reads it.

    Any field may be left empty; the checks that need it are then left out.
    """

    channels: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    frame_importance: Tensor | None = None
    gradcam: Tensor | None = None
    channel_scores: Mapping[str, Tensor] | None = None

    @property
    def credited(self) -> int:
        """How many channels are credited, over all layers."""
        return sum(len(c) for c in self.channels.values())


def _num(x: float) -> float | None:
    """A JSON number; NaN (undefined) becomes ``null``."""
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class ChannelAblation:
    """The target's softmax probability with the credited channels' outputs set to zero, and with as many
    channels drawn at random from the same layers (same count per layer), ``draws`` times."""

    k: int
    p_before: float
    p_after_credited: float
    p_after_random_mean: float
    p_after_random_std: float
    draws: int

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "p_before": _num(self.p_before),
            "p_after_credited": _num(self.p_after_credited),
            "p_after_random_mean": _num(self.p_after_random_mean),
            "p_after_random_std": _num(self.p_after_random_std),
            "draws": self.draws,
        }


@dataclass(frozen=True)
class PerturbationCurve:
    """A deletion or insertion curve: the target's probability after each step, in the explanation's order
    (``curve``) and the area under it against ``draws`` random orders.

    ``auc``: trapezoidal area over the removed (or inserted) fraction 0..1, so in probability units 0..1.
    ``rule``: what "deleted" means, in words.
    """

    auc: float
    random_auc_mean: float
    random_auc_std: float
    rule: str
    curve: tuple[float, ...]
    draws: int

    def to_json(self) -> dict[str, Any]:
        return {
            "auc": _num(self.auc),
            "random_auc_mean": _num(self.random_auc_mean),
            "random_auc_std": _num(self.random_auc_std),
            "rule": self.rule,
            "curve": [_num(p) for p in self.curve],
            "draws": self.draws,
        }


@dataclass(frozen=True)
class RandomisationStep:
    """Spearman rank correlation between the explanation of the trained model and that of a copy whose layer
    groups ``layers_randomised`` (top first, cumulative) have random weights. NaN: undefined (an explanation
    became constant), or not computed."""

    layers_randomised: tuple[str, ...]
    gradcam_rank_corr: float
    frame_importance_rank_corr: float
    channel_rank_corr: float

    def to_json(self) -> dict[str, Any]:
        return {
            "layers_randomised": list(self.layers_randomised),
            "gradcam_rank_corr": _num(self.gradcam_rank_corr),
            "frame_importance_rank_corr": _num(self.frame_importance_rank_corr),
            "channel_rank_corr": _num(self.channel_rank_corr),
        }


@dataclass(frozen=True)
class Verdict:
    """One check's outcome under the rule of docs/conventions.md: ``passed`` is None when it could not be
    judged; ``sentence`` says it in words with the numbers."""

    check: str
    passed: bool | None
    sentence: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "sentence": self.sentence}


@dataclass(frozen=True)
class FaithfulnessResult:
    """Everything :meth:`Faithfulness.evaluate` measured for one clip; a check left out is None (or empty)."""

    target: int
    channel_ablation: ChannelAblation | None
    frame_deletion: PerturbationCurve | None
    frame_insertion: PerturbationCurve | None
    spatial_deletion: PerturbationCurve | None
    randomisation: tuple[RandomisationStep, ...]
    verdicts: tuple[Verdict, ...]

    def verdict(self, check: str) -> Verdict | None:
        """The verdict of ``check`` (e.g. ``"channel_ablation"``), None when it was not run."""
        return next((v for v in self.verdicts if v.check == check), None)

    def to_json(self) -> dict[str, Any]:
        """The ``faithfulness`` object of a ``predictions.json`` entry."""

        def part(x: Any) -> Any:
            return None if x is None else x.to_json()

        return {
            "target": self.target,
            "channel_ablation": part(self.channel_ablation),
            "frame_deletion": part(self.frame_deletion),
            "frame_insertion": part(self.frame_insertion),
            "spatial_deletion": part(self.spatial_deletion),
            "randomisation": [s.to_json() for s in self.randomisation],
            "verdicts": [v.to_json() for v in self.verdicts],
        }
