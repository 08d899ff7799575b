""":class:`Faithfulness`: does an explanation of a video classifier's prediction say something true about the
model? One object, one call, any model ``(N, C, T, H, W) -> (N, classes)`` logits (a plain ``nn.Conv3d``
network, torchvision's ``r3d_18``, a conv3t model).

For one clip, one target class and one :class:`~conv3t.explain.faithfulness.Explanation` it measures the
faithfulness checks

* channel ablation (:mod:`~conv3t.explain.faithfulness.channels`): the credited channels zeroed against random
  channel sets of the same layers;
* frame deletion and insertion (:mod:`~conv3t.explain.faithfulness.frames`): exact over every frame order for
  clips of up to 10 frames;
* spatial deletion (:mod:`~conv3t.explain.faithfulness.pixels`): MoRF and LeRF curves with ROAD imputation
  against random maps at the map's own resolution;

each with a rank p-value (:mod:`~conv3t.explain.faithfulness.stats`), and the sanity check

* model-parameter randomisation (:mod:`~conv3t.explain.faithfulness.randomise`): the cascade curve and a test
  over up to ``randomisation_seeds`` randomised copies; for 3T networks the same test per parameter family; and
  random logit, against up to as many other classes (one rule for the three:
  :mod:`~conv3t.explain.faithfulness.sanity_stats`, draws stopped once the verdict is settled);

and judges each by the rules of :mod:`conv3t.explain.faithfulness.verdicts`. The model is evaluated in eval
mode (each module's mode is restored afterwards) and none of its weights changes.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from conv3t.explain.faithfulness import perturb
from conv3t.explain.faithfulness.channels import channel_ablation
from conv3t.explain.faithfulness.frames import frame_counts, frame_curves
from conv3t.explain.faithfulness.pixels import spatial_curve
from conv3t.explain.faithfulness.randomise import (
    FAMILIES,
    Explainer,
    default_layer_groups,
    family_randomised,
    fully_randomised,
    randomisation_cascade,
)
from conv3t.explain.faithfulness.results import (
    Explanation,
    FaithfulnessResult,
    PerturbationCurve,
    RandomisationStep,
    RandomisationTest,
)
from conv3t.explain.faithfulness.sanity_stats import sequential_tests
from conv3t.explain.faithfulness.summary import summarise
from conv3t.explain.faithfulness.verdicts import (
    ablation_verdict,
    curve_verdict,
    random_logit_verdicts,
    randomisation_verdicts,
)
from conv3t.explain.methods.attribution import logits_of
from conv3t.explain.methods.explanation import takes_kinds

__all__ = ["Faithfulness", "eval_mode", "frame_counts"]


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
        draws: the most random draws (channel sets, frame orders, maps) a Monte-Carlo test takes (>= 19, so that
            ``p = 1 / (draws + 1) <= 0.05`` can be reached; 99 by default); fewer when the sequential rule
            stops a clear failure early. Exact tests enumerate instead.
        steps: frame-curve steps for clips longer than ``exact_frames`` (equal shares of frames).
        seed: seeds every random draw (tie-breaking, channels, orders, maps, imputation noise, randomised weights).
        batch_size: perturbed clips per forward pass (memory: one batch of clips and its activations).
        randomise: run the model-parameter randomisation (sanity) check.
        explainer: recomputes the explanation on randomised models; it must reproduce ``explanation`` on the
            trained model (checked). Default: the method the explanation records (``Explanation.method``
            ``"conv3t"`` with its ``gradcam_layer``); an explanation that records none needs one.
        layer_groups: module names to randomise, in order (top first); default
            :func:`~conv3t.explain.faithfulness.randomise.default_layer_groups` in execution order.
        classes: class names for the sentences (default ``"class <k>"``).
        min_frames: the fewest frames the model takes (>= 2: frame deletion needs two).
        pixel_std: the model's input normalisation std per colour (``x = (pixel - mean) / std``), so that the ROAD
            noise is 0.01 in [0, 1] pixel units; default 1 (the clip is in pixel units).
        exact_frames: clips with at most this many frames get exact frame tests (2^T forward passes; <= 10).
        randomisation_seeds: ``K``, the most draws of each sanity test: fully randomised copies, copies with one
            parameter family randomised, other classes (random logit: at most ``classes - 1``); >= 2, and
            below 5 the sanity checks are not testable at alpha 0.05.
        stop_early: take draw ``k + 1`` of a sanity test only while its verdict is still open (same verdicts;
            False computes all ``K`` draws, e.g. to compare).
        batchnorm: ``"keep"`` or ``"reset"`` BatchNorm running statistics of randomised groups.

    Example::

        result = Faithfulness(model, seed=0).evaluate(clip, target=3, explanation=explanation)
        print(result.verdict("channel_ablation").sentence)
    """

    def __init__(
        self,
        model: nn.Module,
        draws: int = 99,
        steps: int = 10,
        seed: int = 0,
        batch_size: int = 16,
        randomise: bool = True,
        explainer: Explainer | None = None,
        layer_groups: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        min_frames: int = 2,
        pixel_std: Sequence[float] | None = None,
        exact_frames: int = 10,
        randomisation_seeds: int = 5,
        batchnorm: str = "keep",
        stop_early: bool = True,
    ) -> None:
        for name, value, least in (
            ("draws", draws, 2),
            ("steps", steps, 2),
            ("batch_size", batch_size, 1),
            ("randomisation_seeds", randomisation_seeds, 2),
        ):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if min_frames < 2:
            raise ValueError(f"min_frames must be >= 2 (frame deletion needs two frames), got {min_frames}")
        if not 1 <= exact_frames <= 10:
            raise ValueError(f"exact_frames must be in 1..10 (2^T forward passes), got {exact_frames}")
        if batchnorm not in ("keep", "reset"):
            raise ValueError(f"batchnorm must be 'keep' or 'reset', got {batchnorm!r}")
        modules = dict(model.named_modules())
        for name in layer_groups or ():
            if name not in modules:
                raise ValueError(f"layer_groups: {name!r} is not a module of {type(model).__name__}")
        self.model = model
        self.draws, self.steps, self.seed, self.batch_size = draws, steps, seed, batch_size
        self.randomise, self.explainer = randomise, explainer
        self.layer_groups = None if layer_groups is None else list(layer_groups)
        self.classes = None if classes is None else list(classes)
        self.min_frames, self.exact_frames = min_frames, exact_frames
        self.pixel_std = None if pixel_std is None else [float(v) for v in pixel_std]
        self.randomisation_seeds, self.batchnorm, self.stop_early = randomisation_seeds, batchnorm, stop_early
        self._classes = 0  # the model's class count, set by each evaluate's first forward pass

    summarise = staticmethod(summarise)

    def evaluate(self, clip: Tensor, target: int, explanation: Explanation) -> FaithfulnessResult:
        """Run every check the explanation has the fields for.

        Args:
            clip: ``(C, T, H, W)`` or ``(1, C, T, H, W)``, the model's input (normalised as it expects).
            target: the class explained (a logit index).
            explanation: what to check; ``frame_importance`` must be ``(T,)``, ``gradcam`` ``(T, H, W)``.

        Returns:
            A :class:`FaithfulnessResult`.

        Raises:
            ValueError naming ``clip``, ``target``, ``explainer`` or the ``explanation`` field that is wrong.
        """
        x = _as_batch(clip)
        target = _as_index(target)
        if x.shape[2] < self.min_frames:
            raise ValueError(f"clip has {x.shape[2]} frames; the checks need at least {self.min_frames}")
        _check_explanation(self.model, explanation, tuple(x.shape[2:]))
        explainer = self._explainer(explanation) if self.randomise else None
        device = next((p.device for p in self.model.parameters()), x.device)
        x = x.to(device)
        generator = torch.Generator().manual_seed(self.seed)
        with eval_mode(self.model):
            before, widths, ran, coarse = self._probe(x, target, explanation)
            label = self.classes[target] if self.classes and target < len(self.classes) else f"class {target}"
            layers = {name: [int(c) for c in chs] for name, chs in explanation.channels.items() if len(chs)}
            ablation = None
            if layers:
                ablation = channel_ablation(
                    self.model, x, target, layers, widths, before, generator,
                    max_draws=self.draws, batch_size=self.batch_size,
                )  # fmt: skip
            deletion = insertion = None
            if explanation.frame_importance is not None:
                deletion, insertion = frame_curves(
                    self.model, x, target, explanation.frame_importance, generator,
                    max_draws=self.draws, steps=self.steps, batch_size=self.batch_size,
                    exact_frames=self.exact_frames,
                )  # fmt: skip
            spatial = self._spatial(x, target, explanation, coarse, generator)
            cascade, tests, logit_tests, others = self._randomisation(
                x, target, explanation, explainer, ran, coarse, generator
            )
        verdicts = [] if ablation is None else [ablation_verdict(ablation, label)]
        for check, curve in (
            ("frame_deletion", deletion),
            ("frame_insertion", insertion),
            ("spatial_deletion", spatial),
        ):
            if curve is not None:
                verdicts.append(curve_verdict(check, curve, label))
        verdicts += randomisation_verdicts(tests)
        names = [self.classes[o] if self.classes and o < len(self.classes) else f"class {o}" for o in others]
        verdicts += random_logit_verdicts(logit_tests, label, names)
        return FaithfulnessResult(
            int(target), ablation, deletion, insertion, spatial, cascade, tuple(verdicts), tests, logit_tests,
            others[0] if others else -1, others,
        )  # fmt: skip

    def _explainer(self, explanation: Explanation) -> Explainer:
        if self.explainer is not None:
            return self.explainer
        method, frames, top = [*(explanation.method or "").split("/"), "", ""][:3]
        if method == "conv3t" and explanation.gradcam_layer:
            from conv3t.explain.methods.explanation import conv3t_explainer

            layers = sorted(explanation.channel_scores or explanation.channels) or None
            top_channels = int(top) if top.isdigit() else 5
            return conv3t_explainer(layers, explanation.gradcam_layer, top_channels, frames or "input_x_gradient")
        raise ValueError(
            "explainer: the randomisation check recomputes the explanation on randomised models and needs the "
            "explainer that made it (Faithfulness(model, explainer=...)), or an Explanation that records "
            "method='conv3t/<frame method>/<top channels>' and its gradcam_layer (explain_clip's do); or pass "
            "randomise=False"
        )

    def _probe(
        self, x: Tensor, target: int, explanation: Explanation
    ) -> tuple[tuple[float, float], dict[str, int], list[str], tuple[int, int, int] | None]:
        """One forward pass: the target's probability and logit, the channel count of each credited layer, the
        names of the modules in the order they finished running (the randomisation's layer groups), and the
        Grad-CAM's own resolution."""
        modules = dict(self.model.named_modules())
        shapes: dict[str, tuple[int, ...]] = {}
        ran: list[str] = []
        handles = [
            m.register_forward_hook(lambda _m, _i, o, _n=n: _record(_n, o, shapes, ran))
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
        widths = {n: s[1] for n, s in shapes.items() if len(s) >= 2}
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
        coarse = _coarse(explanation, shapes)
        before = (float(torch.softmax(logits, 1)[0, target]), float(logits[0, target]))
        self._classes = classes
        return before, widths, ran, coarse

    def _spatial(
        self,
        x: Tensor,
        target: int,
        explanation: Explanation,
        coarse: tuple[int, int, int] | None,
        generator: torch.Generator,
    ) -> PerturbationCurve | None:
        if explanation.gradcam is None:
            return None
        if coarse is None:
            # no resolution to match the random maps to: an unmatched baseline would favour any smooth map
            return PerturbationCurve(float("nan"), float("nan"), float("nan"), perturb.SPATIAL_RULE, (), 0)
        std = torch.tensor(self.pixel_std or [1.0] * x.shape[1], dtype=torch.float32)
        curve, residual = spatial_curve(
            self.model, x, target, explanation.gradcam, coarse, perturb.NOISE / std, generator,
            max_draws=self.draws, batch_size=self.batch_size,
        )  # fmt: skip
        return dataclasses.replace(curve, road_residual=residual)

    def _randomisation(
        self,
        x: Tensor,
        target: int,
        explanation: Explanation,
        explainer: Explainer | None,
        ran: list[str],
        coarse: tuple[int, int, int] | None,
        generator: torch.Generator,
    ) -> tuple[
        tuple[RandomisationStep, ...], tuple[RandomisationTest, ...], tuple[RandomisationTest, ...], tuple[int, ...]
    ]:
        """The cascade, the randomisation tests (every group; each parameter family of a 3T network) and the
        random-logit tests with the other classes explained. The cascade test's further copies come from
        ``generator`` one after the other, as before early stopping (stopping only leaves the later ones out);
        every other draw and each test's item null has its own seed, so stopping changes none of the draws
        taken."""
        if explainer is None:
            return (), (), (), ()
        groups = self.layer_groups if self.layer_groups is not None else default_layer_groups(self.model, ran)
        reference, cascade, last = randomisation_cascade(
            self.model, x, target, explainer, groups, generator, self.batchnorm
        )
        _same_explanation(explanation, reference)
        base, most = int(np.random.SeedSequence([self.seed, 0x24C]).generate_state(1)[0]), self.randomisation_seeds

        def copy_(k: int, kinds: frozenset[str]) -> Explanation:  # draw 0 is the cascade's last step
            if k == 0 and last is not None:
                return last
            return fully_randomised(self.model, x, target, _only(explainer, kinds), groups, generator, self.batchnorm)

        tests = sequential_tests(reference, copy_, most, coarse, _seeded(base, 0, _NULL), self.stop_early)
        for i, family in enumerate(FAMILIES):  # 3T networks: does the explanation depend on the learned motion?
            first = family_randomised(self.model, x, target, explainer, family, _seeded(base, 1 + i, 0))
            if first is None:
                continue
            draw = _family_draws(self.model, x, target, explainer, family, first, base, 1 + i)
            found = sequential_tests(reference, draw, most, coarse, _seeded(base, 1 + i, _NULL), self.stop_early)
            tests += tuple(dataclasses.replace(t, kind=f"{family}/{t.kind}") for t in found)
        if self._classes < 2:
            return cascade, tests, (), ()
        # distinct other classes, uniformly at random without replacement
        order = torch.randperm(self._classes - 1, generator=_seeded(base, len(FAMILIES) + 1, 0)).tolist()
        others = [c + int(c >= target) for c in order[: min(most, self._classes - 1)]]
        asked: list[int] = []

        def other(k: int, kinds: frozenset[str]) -> Explanation:
            asked.append(others[k])
            return _only(explainer, kinds)(self.model, x, others[k])

        null = _seeded(base, len(FAMILIES) + 1, _NULL)
        logit = sequential_tests(reference, other, len(others), coarse, null, self.stop_early)
        return cascade, tests, logit, tuple(asked)


_NULL = 2**20  # the "draw" index of a test's item-null seed


def _only(explainer: Explainer, kinds: frozenset[str]) -> Explainer:
    """``explainer`` asked for ``kinds`` alone when it can be (:func:`takes_kinds`): a draw after a kind's verdict
    is settled then skips that kind's computation (integrated gradients' frames are most of an explanation)."""
    if not takes_kinds(explainer):
        return explainer
    return functools.partial(explainer, kinds=kinds)  # type: ignore[call-arg]


def _seeded(base: int, stream: int, draw: int) -> torch.Generator:
    """An independent generator for one draw of one sanity test (well mixed by numpy's SeedSequence)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([base, stream, draw]).generate_state(1)[0]))


def _family_draws(
    model: nn.Module,
    x: Tensor,
    target: int,
    explainer: Explainer,
    family: str,
    first: Explanation,
    base: int,
    stream: int,
) -> Callable[[int, frozenset[str]], Explanation]:
    """Draw ``k`` of a parameter family's test: a copy with that family redrawn from its own seed."""

    def draw(k: int, kinds: frozenset[str]) -> Explanation:
        if k == 0:
            return first
        out = family_randomised(model, x, target, _only(explainer, kinds), family, _seeded(base, stream, k))
        assert out is not None  # the model had Conv3T layers for draw 0
        return out

    return draw


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


def _record(name: str, out: object, shapes: dict[str, tuple[int, ...]], ran: list[str]) -> None:
    ran.append(name)
    if isinstance(out, Tensor):
        shapes[name] = tuple(out.shape)


def _coarse(explanation: Explanation, shapes: dict[str, tuple[int, ...]]) -> tuple[int, int, int] | None:
    """The map's own resolution: ``gradcam_shape``, else the last three sizes of ``gradcam_layer``'s output."""
    if explanation.gradcam_shape is not None:
        return tuple(int(v) for v in explanation.gradcam_shape)  # type: ignore[return-value]
    if explanation.gradcam_layer is None:
        return None
    shape = shapes.get(explanation.gradcam_layer)
    if shape is None or len(shape) != 5:
        raise ValueError(
            f"explanation.gradcam_layer: {explanation.gradcam_layer!r} gave no (N, C, T, H, W) output in the "
            "forward pass"
        )
    return shape[2], shape[3], shape[4]


def _same_explanation(given: Explanation, reference: Explanation) -> None:
    """The explainer must reproduce the explanation it is to stand for (else the cascade checks another one)."""
    for name in ("frame_importance", "gradcam"):
        a, b = getattr(given, name), getattr(reference, name)
        if a is None:
            continue
        a = a.detach().double().cpu()
        if b is None or b.shape != a.shape or not torch.allclose(b.detach().double().cpu(), a, rtol=1e-3, atol=1e-4):
            raise ValueError(
                f"explainer: on the trained model it does not reproduce explanation.{name} (the randomisation "
                "would check another explanation); pass the explainer that made the explanation"
            )
    if given.channels and reference.channels is not None and dict(reference.channels) != dict(given.channels):
        mine = {k: tuple(v) for k, v in given.channels.items() if len(v)}
        theirs = {k: tuple(v) for k, v in reference.channels.items() if len(v)}
        if mine != theirs:
            raise ValueError(
                f"explainer: on the trained model it credits {theirs}, the explanation credits {mine}; pass the "
                "explainer that made the explanation"
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
