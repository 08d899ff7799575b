""":class:`Faithfulness`: does an explanation of a video classifier's prediction say something true about the
model? One object, one call, any model ``(N, C, T, H, W) -> (N, classes)`` logits (a plain ``nn.Conv3d``
network, torchvision's ``r3d_18``, a conv3t model).

For one clip, one target class and one :class:`~conv3t.explain.faithfulness.Explanation` it measures

* channel ablation: the target's probability with the credited channels' outputs set to zero (forward hooks),
  against as many random channels of the same layers, ``draws`` times;
* frame deletion and insertion: the probability curve as frames are deleted (inserted) most important first,
  against ``draws`` random frame orders; area under the curve;
* spatial deletion: the same for pixel positions ranked by the Grad-CAM, removed in ``steps`` steps with ROAD
  imputation (:mod:`conv3t.explain.faithfulness.perturb`);
* model-parameter randomisation: the explanation recomputed after randomising the model's layer groups top
  down, on a copy (:mod:`conv3t.explain.faithfulness.randomise`);

and judges each by the rules of :mod:`conv3t.explain.faithfulness.verdicts`. The model is evaluated in eval
mode (each module's mode is restored afterwards) and none of its weights changes.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from conv3t.explain.attribution import logits_of
from conv3t.explain.faithfulness import perturb
from conv3t.explain.faithfulness.randomise import Explainer, default_layer_groups, randomisation_cascade
from conv3t.explain.faithfulness.results import (
    ChannelAblation,
    Explanation,
    FaithfulnessResult,
    PerturbationCurve,
    RandomisationStep,
)
from conv3t.explain.faithfulness.verdicts import ablation_verdict, curve_verdict, randomisation_verdicts

__all__ = ["Faithfulness", "eval_mode"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode; restore every module's own mode on exit."""
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in saved:  # parents come before their children: each module ends with its own flag
            m.train(flag)


def _as_batch(clip: Tensor) -> Tensor:
    if not isinstance(clip, Tensor) or clip.ndim not in (4, 5) or (clip.ndim == 5 and clip.shape[0] != 1):
        shape = tuple(clip.shape) if isinstance(clip, Tensor) else type(clip).__name__
        raise ValueError(f"clip must be one clip shaped (C, T, H, W) or (1, C, T, H, W), got {shape}")
    return (clip if clip.ndim == 5 else clip[None]).detach()


class Faithfulness:
    """Faithfulness and sanity checks of one prediction's explanation (module notes).

    Args:
        model: the classifier, ``(N, C, T, H, W) -> (N, classes)`` logits (or a tuple whose first item is).
        draws: random channel sets and random frame / pixel orders to compare with (>= 2; 20 by default).
        steps: steps of the spatial deletion curve (>= 2): pixels removed in ``steps`` equal shares; also of the
            frame curves of a clip with more than ``steps`` frames (:func:`frame_counts`), else one frame a step.
        seed: seeds every random draw (channels, orders, imputation noise, randomised weights).
        batch_size: perturbed clips per forward pass (memory: one batch of clips and its activations).
        randomise: run the model-parameter randomisation check.
        explainer: recomputes the explanation on a randomised model; default
            :func:`~conv3t.explain.faithfulness.conv3t_explainer` over the explanation's channel layers.
        layer_groups: module names to randomise, in order (top first); default
            :func:`~conv3t.explain.faithfulness.randomise.default_layer_groups`.
        classes: class names for the sentences (default ``"class <k>"``).
        min_frames: the fewest frames the model takes (>= 2: frame deletion needs two).
        sweeps: Jacobi sweeps of the ROAD imputation.

    Example::

        result = Faithfulness(model, draws=20, seed=0).evaluate(clip, target=3, explanation=explanation)
        print(result.verdict("channel_ablation").sentence)
    """

    def __init__(
        self,
        model: nn.Module,
        draws: int = 20,
        steps: int = 10,
        seed: int = 0,
        batch_size: int = 16,
        randomise: bool = True,
        explainer: Explainer | None = None,
        layer_groups: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        min_frames: int = 2,
        sweeps: int = 20,
    ) -> None:
        for name, value, least in (("draws", draws, 2), ("steps", steps, 2), ("batch_size", batch_size, 1)):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if min_frames < 2:
            raise ValueError(f"min_frames must be >= 2 (frame deletion needs two frames), got {min_frames}")
        modules = dict(model.named_modules())
        for name in layer_groups or ():
            if name not in modules:
                raise ValueError(f"layer_groups: {name!r} is not a module of {type(model).__name__}")
        self.model = model
        self.draws, self.steps, self.seed, self.batch_size = draws, steps, seed, batch_size
        self.randomise, self.explainer = randomise, explainer
        self.layer_groups = None if layer_groups is None else list(layer_groups)
        self.classes = None if classes is None else list(classes)
        self.min_frames, self.sweeps = min_frames, sweeps

    def evaluate(self, clip: Tensor, target: int, explanation: Explanation) -> FaithfulnessResult:
        """Run every check the explanation has the fields for.

        Args:
            clip: ``(C, T, H, W)`` or ``(1, C, T, H, W)``, the model's input (normalised as it expects).
            target: the class explained (a logit index).
            explanation: what to check; ``frame_importance`` must be ``(T,)``, ``gradcam`` ``(T, H, W)``.

        Returns:
            A :class:`FaithfulnessResult`.

        Raises:
            ValueError naming ``clip``, ``target`` or the ``explanation`` field that is wrong.
        """
        x = _as_batch(clip)
        target = _as_index(target)
        if x.shape[2] < self.min_frames:
            raise ValueError(f"clip has {x.shape[2]} frames; the checks need at least {self.min_frames}")
        _check_explanation(self.model, explanation, tuple(x.shape[2:]))
        device = next((p.device for p in self.model.parameters()), x.device)
        x = x.to(device)
        generator = torch.Generator().manual_seed(self.seed)
        with eval_mode(self.model):
            p_before, widths, ran = self._probe(x, target, explanation)
            label = self.classes[target] if self.classes and target < len(self.classes) else f"class {target}"
            ablation = self._ablation(x, target, explanation, widths, p_before, generator)
            deletion, insertion = self._frames(x, target, explanation, generator)
            spatial = self._spatial(x, target, explanation, generator)
            cascade = self._randomisation(x, target, explanation, ran, generator)
        verdicts = []
        if ablation is not None:
            verdicts.append(ablation_verdict(ablation, label))
        for check, curve in (
            ("frame_deletion", deletion),
            ("frame_insertion", insertion),
            ("spatial_deletion", spatial),
        ):
            if curve is not None:
                verdicts.append(curve_verdict(check, curve, label))
        verdicts += randomisation_verdicts(cascade)
        return FaithfulnessResult(int(target), ablation, deletion, insertion, spatial, cascade, tuple(verdicts))

    def _probe(self, x: Tensor, target: int, explanation: Explanation) -> tuple[float, dict[str, int], set[str]]:
        """One forward pass: the target's probability, the channel count of each credited layer, and the names
        of the modules that ran (for the randomisation's layer groups)."""
        modules = dict(self.model.named_modules())
        widths: dict[str, int] = {}
        ran: set[str] = set()
        handles = [
            m.register_forward_hook(lambda _m, _i, o, _n=n: _record(_n, o, widths, ran, explanation))
            for n, m in modules.items()
            if n
        ]
        try:
            with torch.no_grad():
                logits = logits_of(self.model)(x).float()
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"clip: the model cannot run on a clip of shape {tuple(x.shape[1:])} (too few frames or pixels?): {err}"
            ) from err
        finally:
            for h in handles:
                h.remove()
        classes = logits.shape[1]
        if not 0 <= target < classes:
            raise ValueError(f"target must be a class index in [0, {classes}) for this model, got {target!r}")
        for name, channels in explanation.channels.items():
            if name not in widths:
                raise ValueError(
                    f"explanation.channels: layer {name!r} gave no (N, C, ...) tensor output in the forward pass"
                )
            bad = [c for c in channels if not 0 <= int(c) < widths[name]]
            if bad:
                raise ValueError(
                    f"explanation.channels[{name!r}]: channels {bad} out of range, the layer has "
                    f"{widths[name]} output channels"
                )
        return float(torch.softmax(logits, 1)[0, target]), widths, ran

    def _ablation(
        self,
        x: Tensor,
        target: int,
        explanation: Explanation,
        widths: dict[str, int],
        p_before: float,
        generator: torch.Generator,
    ) -> ChannelAblation | None:
        layers = {name: [int(c) for c in chs] for name, chs in explanation.channels.items() if len(chs)}
        if not layers:
            return None
        keep = {name: torch.ones(1 + self.draws, widths[name], dtype=torch.bool) for name in layers}
        for name, chs in layers.items():
            keep[name][0, chs] = False
            for d in range(1, 1 + self.draws):  # the same count per layer, drawn among all its channels
                keep[name][d, torch.randperm(widths[name], generator=generator)[: len(chs)]] = False
        p = perturb.ablated_probabilities(self.model, x, target, keep, self.batch_size)
        random = p[1:].double()
        return ChannelAblation(
            k=sum(len(c) for c in layers.values()),
            p_before=p_before,
            p_after_credited=float(p[0]),
            p_after_random_mean=float(random.mean()),
            p_after_random_std=float(random.std()),
            draws=self.draws,
        )

    def _orders(self, importance: Tensor, generator: torch.Generator) -> Tensor:
        """``(1 + draws, n)``: the explanation's order (most important first, ties by position) and random ones."""
        n = importance.numel()
        first = torch.argsort(importance.detach().flatten().cpu().double(), descending=True, stable=True)
        return torch.stack([first, *(torch.randperm(n, generator=generator) for _ in range(self.draws))])

    def _frames(
        self, x: Tensor, target: int, explanation: Explanation, generator: torch.Generator
    ) -> tuple[PerturbationCurve | None, PerturbationCurve | None]:
        if explanation.frame_importance is None:
            return None, None
        t = x.shape[2]
        orders = self._orders(explanation.frame_importance, generator)
        # row (o, i): the first counts[i] frames of order o; rank[o, f] = position of frame f in order o
        rank = torch.empty_like(orders)
        rank.scatter_(1, orders, torch.arange(t).expand_as(orders).contiguous())
        counts = frame_counts(t, self.steps)
        first = rank[:, None, :] < counts.view(1, -1, 1)  # (orders, S - 1, T)
        ends = torch.tensor([[False] * t, [True] * t])
        masks = torch.cat([ends, first.flatten(0, 1), ~first.flatten(0, 1)])
        p = perturb.frame_probabilities(self.model, x, target, masks, self.batch_size)
        whole, empty, rest = p[0], p[1], p[2:].view(2, orders.shape[0], len(counts))
        deletion = torch.cat([whole.expand(orders.shape[0], 1), rest[0], empty.expand(orders.shape[0], 1)], 1)
        insertion = torch.cat([empty.expand(orders.shape[0], 1), rest[1], whole.expand(orders.shape[0], 1)], 1)
        return _curve(deletion, perturb.FRAME_RULE, self.draws), _curve(insertion, perturb.FRAME_RULE, self.draws)

    def _spatial(
        self, x: Tensor, target: int, explanation: Explanation, generator: torch.Generator
    ) -> PerturbationCurve | None:
        if explanation.gradcam is None:
            return None
        positions = explanation.gradcam.numel()
        orders = self._orders(explanation.gradcam, generator)
        counts = [round(positions * i / self.steps) for i in range(1, self.steps)]
        inner = perturb.spatial_probabilities(
            self.model, x, target, orders, counts, self.batch_size, generator, self.sweeps
        )
        ends = perturb.spatial_probabilities(
            self.model, x, target, orders[:1], [0, positions], self.batch_size, generator, self.sweeps
        )
        n = orders.shape[0]
        curve = torch.cat([ends[:, :1].expand(n, 1), inner, ends[:, 1:].expand(n, 1)], 1)
        return _curve(curve, perturb.SPATIAL_RULE, self.draws)

    def _randomisation(
        self, x: Tensor, target: int, explanation: Explanation, ran: set[str], generator: torch.Generator
    ) -> tuple[RandomisationStep, ...]:
        if not self.randomise:
            return ()
        groups = self.layer_groups if self.layer_groups is not None else default_layer_groups(self.model, ran)
        explainer = self.explainer
        if explainer is None:
            from conv3t.explain.faithfulness.explainers import conv3t_explainer

            explainer = conv3t_explainer(layers=sorted(explanation.channels) or None)
        return randomisation_cascade(self.model, x, target, explainer, groups, generator)


def frame_counts(frames: int, steps: int) -> Tensor:
    """Frames deleted (inserted) after each inner step of a frame curve: ``(S - 1,)`` integers.

    One frame per step (``1, ..., T - 1``; ``S = T``) when the clip has at most ``steps`` frames; otherwise
    ``steps`` equal shares (``round(T * i / steps)``; ``S = steps``), as the spatial curve does. Why: each point
    is a forward pass per order, so per-frame steps cost ``2 (draws + 1) (T - 1)`` passes, 1 218 for the paper's
    30-frame clips at 20 draws, ~14 minutes per clip on a 2-core CPU; 10 shares cost 378. The area is the same
    trapezoid over the fraction 0..1 either way; a coarser curve only resolves the order more coarsely."""
    if frames <= steps:
        return torch.arange(1, frames)
    return torch.tensor([round(frames * i / steps) for i in range(1, steps)])


def _as_index(target: object) -> int:
    """An int, a numpy integer or a one-element integer tensor as an int (a float or a bool is refused)."""
    if isinstance(target, Tensor) and target.numel() == 1 and not target.is_floating_point():
        target = target.item()
    if isinstance(target, bool):
        raise ValueError(f"target must be a class index, got {target!r}")
    try:
        return operator.index(target)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"target must be a class index (an integer), got {target!r}") from None


def _record(name: str, out: object, widths: dict[str, int], ran: set[str], explanation: Explanation) -> None:
    ran.add(name)
    if name in explanation.channels and isinstance(out, Tensor) and out.ndim >= 2:
        widths[name] = int(out.shape[1])


def _curve(curves: Tensor, rule: str, draws: int) -> PerturbationCurve:
    """Row 0: the explanation's order; the other rows: random orders. ``curves (1 + draws, S + 1)``."""
    auc = perturb.curve_auc(curves.double())
    return PerturbationCurve(
        auc=float(auc[0]),
        random_auc_mean=float(auc[1:].mean()),
        random_auc_std=float(auc[1:].std()),
        rule=rule,
        curve=tuple(float(v) for v in curves[0]),
        draws=draws,
    )


def _check_explanation(model: nn.Module, explanation: Explanation, size: tuple[int, int, int]) -> None:
    """Field-by-field checks against the model's modules and the clip's ``(T, H, W)``."""
    if not isinstance(explanation, Explanation):
        raise ValueError(f"explanation must be an Explanation, got {type(explanation).__name__}")
    modules = dict(model.named_modules())
    for name in explanation.channels:
        if name not in modules or not name:
            known = [n for n, m in modules.items() if isinstance(m, nn.Conv3d | nn.Conv2d) or hasattr(m, "kernel")]
            raise ValueError(
                f"explanation.channels: layer {name!r} is not a module of {type(model).__name__}; "
                f"its convolution layers are: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}"
            )
    t = size[0]
    if explanation.frame_importance is not None and tuple(explanation.frame_importance.shape) != (t,):
        raise ValueError(
            f"explanation.frame_importance must be ({t},), one value per frame of the clip, "
            f"got {tuple(explanation.frame_importance.shape)}"
        )
    if explanation.gradcam is not None and tuple(explanation.gradcam.shape) != size:
        raise ValueError(
            f"explanation.gradcam must be {size} (T, H, W) like the clip, got {tuple(explanation.gradcam.shape)}"
        )
