"""The sanity check of Adebayo et al. (2018), "model-parameter randomisation", tested against a null.

The layer groups of a model are its top-level children that hold parameters and run in the forward pass
(descending through a single wrapping child), in the order they *execute*, reversed: the last one to run (nearest
the output) first. The *cascade* randomises groups ``1..k`` of a deep copy of the model (never the caller's
model) and recomputes the explanation at each step; the Spearman rank correlation with the explanation of the
trained model says how much of the explanation survived (the whole curve is reported, not judged).

The *test* randomises every group of ``seeds`` independent copies. For each explanation kind it takes the rank
correlation ``c_k`` of the trained model's explanation with that of each randomised copy ``k``; ``r`` is their
mean. The items are the frames, the channels, and for a map the cells of its own coarse resolution (neighbouring
pixels of an upsampled map are not separate items). The explanation *survives* (the check fails) when both

* ``r`` is above what unrelated explanations give: the same statistic with the items of each randomised
  explanation in a random order (999 permutations up to 50 items, else the normal limit), and
* the ``c_k`` are consistently positive over the seeds: the exact sign-flip test of their mean (all ``2^K``
  sign patterns), which needs ``K >= 5`` seeds to reach ``ALPHA`` (``1 / 32``).

``p`` is the larger of the two p-values. The item null alone is far too narrow when the randomised explanations
share structure, e.g. a few frames that look alike give every random model's frame attribution the same
pattern up to its sign, so each ``c_k`` is near +-1: the verdict then followed the signs of five draws (issue
24). Each ``c_k`` is symmetric about 0 under the null in either reading (the permutation distribution of a rank
correlation is symmetric; so is a signed explanation of a model drawn as likely as its negation, below), so the
sign-flip test is valid; requiring both keeps a negligible but consistent correlation from failing the check.
An explanation that is constant on the trained or any randomised model is undefined (not a pass).
``null_corr``, the mean correlation of two independently randomised models' explanations, shows how much of an
explanation the architecture alone gives.

Two variants: *signed* (the scores as they are) decides, because the faithfulness checks rank frames and
channels by the signed scores, so that ranking is what the explanation claims; *absolute* (``|scores|``,
Adebayo et al.'s reading: how much, whatever the direction) is reported beside it. For a non-negative
explanation (Grad-CAM) the two are the same.

Randomising a group replaces every parameter tensor in it by independent zero-mean Gaussian draws with that
tensor's own root-mean-square (or 1 when it is 0): activations keep their scale while every learned value is
gone, the tensor's mean included (a mean is learned too: a temporal layer whose weights are all positive sums
its frames). Zero-mean draws make a randomised model as likely as the one with its output layer negated, whose
signed gradient-based explanations are exactly negated: the signed ``c_k`` are then symmetric, as the sign-flip
test assumes. BatchNorm's running statistics are kept (``batchnorm="keep"``, the default: the randomised weights
then see the trained normalisation) or reset to mean 0, variance 1 (``"reset"``). The parameter-family checks
of 3T networks randomise a family around its own mean (``centre=False``: scales and rotations near their
learned values stay valid motions) and make one comparison, judged by the item null alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.explain.faithfulness.results import RandomisationStep, RandomisationTest
from conv3t.explain.methods.explanation import Explainer, Explanation

__all__ = [
    "FAMILIES",
    "Explainer",
    "default_layer_groups",
    "family_randomised",
    "randomisation_cascade",
    "randomisation_tests",
    "randomise_",
    "sign_flip_p",
    "spearman",
]

KINDS = ("gradcam", "frame_importance", "channels")
PERMUTATIONS = 999


def spearman(a: Tensor | None, b: Tensor | None) -> float:
    """Spearman rank correlation of two equally long score arrays (ties get their mean rank); NaN when either
    is missing or constant."""
    if a is None or b is None:
        return float("nan")
    x = a.detach().double().flatten().cpu().numpy()
    y = b.detach().double().flatten().cpu().numpy()
    if x.shape != y.shape:
        raise ValueError(f"cannot correlate {x.shape[0]} scores with {y.shape[0]}")
    rx = pd.Series(x).rank(method="average").to_numpy()
    ry = pd.Series(y).rank(method="average").to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def default_layer_groups(model: nn.Module, ran: Sequence[str] | None = None) -> list[str]:
    """Qualified names of the model's layer groups, top (output side) first (module notes).

    ``ran``: names of modules in the order they finished running in a forward pass; groups are ordered by it
    (the last to run first) and groups not among them (e.g. auxiliary heads that only run in training) are
    left out. None keeps every group in definition order, reversed.
    """
    prefix, root = "", model
    while True:
        children = [(n, m) for n, m in root.named_children() if any(True for _ in m.parameters())]
        if len(children) == 1 and any(True for _ in children[0][1].children()):
            prefix, root = f"{prefix}{children[0][0]}.", children[0][1]
            continue
        break
    names = [prefix + n for n, _ in children]
    if ran is not None:
        position = {n: i for i, n in enumerate(ran)}
        names = sorted((n for n in names if n in position), key=position.__getitem__)
    return names[::-1]


def randomise_(module: nn.Module, generator: torch.Generator, batchnorm: str = "keep", centre: bool = True) -> None:
    """Replace every parameter of ``module`` in place by Gaussian draws (module notes): zero-mean with the
    tensor's root-mean-square (``centre``), or with its own mean and std (a constant tensor gets scale ``|mean|``
    or 1), so every parameter changes. ``batchnorm``: ``"keep"`` or ``"reset"`` the running statistics. Conv3T
    kernel caches are dropped."""
    if batchnorm not in ("keep", "reset"):
        raise ValueError(f"batchnorm must be 'keep' or 'reset', got {batchnorm!r}")
    with torch.no_grad():
        for p in module.parameters():
            values = p.detach().float()
            mean = float(values.mean())
            std = float(values.std()) if p.numel() > 1 else 0.0
            if centre:
                mean, std = 0.0, float(values.square().mean().sqrt()) or 1.0
            elif not std > 0:
                std = abs(mean) or 1.0
            # float32 draws: a ResNet's 33 M parameters in float64 took most of a randomisation's time
            p.copy_((torch.randn(p.shape, generator=generator) * std + mean).to(p))
        if batchnorm == "reset":
            for m in module.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                    m.reset_running_stats()
    for m in module.modules():
        clear = getattr(m, "clear_kernel_cache", None)
        if callable(clear):
            clear()


def _channel_vector(explanation: Explanation, layers: Sequence[str]) -> Tensor | None:
    scores = explanation.channel_scores
    if not scores or any(name not in scores for name in layers):
        return None
    return torch.cat([scores[name].detach().flatten().cpu() for name in layers])


def randomisation_cascade(
    model: nn.Module,
    clip: Tensor,
    target: int,
    explainer: Explainer,
    groups: Sequence[str],
    generator: torch.Generator,
    batchnorm: str = "keep",
) -> tuple[Explanation, tuple[RandomisationStep, ...], Explanation | None]:
    """Randomise ``groups`` of a copy of ``model`` one after the other and compare the explanations.

    Args:
        model: the trained model (not changed: the cascade runs on a deep copy, in eval mode).
        clip: ``(1, C, T, H, W)`` on the model's device.
        explainer: recomputes the explanation (Grad-CAM, frame importance, channel scores) on a model.
        groups: module names, in the order to randomise them (top first).

    Returns:
        The explanation of the untouched copy (the reference), one :class:`RandomisationStep` per group (each
        listing every group randomised so far), and the explanation with every group randomised (None
        without groups).
    """
    copied = copy.deepcopy(model).eval()
    reference = explainer(copied, clip, target)
    layers = sorted(reference.channel_scores or {})
    ref_channels = _channel_vector(reference, layers)
    steps, done, now = [], [], None
    for name in groups:
        randomise_(copied.get_submodule(name), generator, batchnorm)
        done.append(name)
        now = explainer(copied, clip, target)
        steps.append(
            RandomisationStep(
                layers_randomised=tuple(done),
                gradcam_rank_corr=spearman(reference.gradcam, now.gradcam),
                frame_importance_rank_corr=spearman(reference.frame_importance, now.frame_importance),
                channel_rank_corr=spearman(ref_channels, _channel_vector(now, layers)),
            )
        )
    del copied
    return reference, tuple(steps), now


def fully_randomised(
    model: nn.Module,
    clip: Tensor,
    target: int,
    explainer: Explainer,
    groups: Sequence[str],
    generator: torch.Generator,
    batchnorm: str = "keep",
) -> Explanation:
    """The explanation of a copy of ``model`` with every group in ``groups`` randomised."""
    copied = copy.deepcopy(model).eval()
    for name in groups:
        randomise_(copied.get_submodule(name), generator, batchnorm)
    out = explainer(copied, clip, target)
    del copied
    return out


#: The parameter families of a 3T network (issue 24 item 4b): its 2D filters, and its learned motion.
FAMILIES = {"filters_2d": ("weight",), "temporal": ("scale", "rotation", "translation_x", "translation_y")}


def family_randomised(
    model: nn.Module, clip: Tensor, target: int, explainer: Explainer, family: str, generator: torch.Generator
) -> Explanation | None:
    """The explanation of a copy of ``model`` whose Conv3T layers have only one parameter family randomised (each
    tensor by its own mean and std, as :func:`randomise_`); None when the model has no Conv3T layer with
    temporal depth > 1."""
    from conv3t.nn import Conv3T

    copied = copy.deepcopy(model).eval()
    layers = [m for m in copied.modules() if isinstance(m, Conv3T) and m.kernel_size[0] > 1]
    if not layers:
        return None
    holder = nn.Module()
    with torch.no_grad():
        for layer in layers:
            for name in FAMILIES[family]:
                holder.p = getattr(layer, name)
                randomise_(holder, generator, centre=False)
            layer.clear_kernel_cache()
    out = explainer(copied, clip, target)
    del copied
    return out


def _items(explanation: Explanation, kind: str, layers: Sequence[str], coarse: tuple[int, ...] | None) -> Tensor | None:
    """The scores whose ranks are compared: frames, channels, or a map's coarse cells (module notes)."""
    if kind == "frame_importance":
        return explanation.frame_importance
    if kind == "channels":
        return _channel_vector(explanation, layers)
    cam = explanation.gradcam
    if cam is None or coarse is None:
        return cam
    return F.adaptive_avg_pool3d(cam.detach().double()[None, None].cpu(), coarse)[0, 0]


def randomisation_tests(
    reference: Explanation,
    randomised: Sequence[Explanation],
    coarse: tuple[int, ...] | None,
    generator: torch.Generator,
) -> tuple[RandomisationTest, ...]:
    """The test of each explanation kind present (module notes): ``reference`` (the trained model's) against
    the explanations of ``randomised`` independently, fully randomised copies; ``coarse``: the map's own
    resolution ``(T', H', W')`` (None: every pixel is an item)."""
    layers = sorted(reference.channel_scores or {})
    out = []
    for kind in KINDS:
        ref = _items(reference, kind, layers, coarse)
        if ref is None or not randomised:
            continue
        others = [_items(e, kind, layers, coarse) for e in randomised]
        if any(o is None for o in others):
            continue
        out.append(_test(kind, ref, others, generator))
    return tuple(out)


def _ranks(x: Tensor) -> np.ndarray:
    return pd.Series(x.detach().double().flatten().cpu().numpy()).rank(method="average").to_numpy()


def _test(kind: str, ref: Tensor, others: list[Tensor], generator: torch.Generator) -> RandomisationTest:
    """The signed test (it decides) with the absolute variant beside it (module notes)."""
    signed = _variant(ref, others, generator)
    if signed is None:
        constant = sum(int(_ranks(t).std() == 0) for t in (ref, *others))
        return RandomisationTest(kind, float("nan"), float("nan"), None, len(others), constant)
    trained, null_corr, p, min_p, corrs = signed
    absolute = _variant(ref.abs(), [o.abs() for o in others], generator)
    return RandomisationTest(
        kind, trained, null_corr, p, len(others), 0,
        seed_corrs=tuple(corrs),
        min_p=min_p,
        absolute_corr=absolute[0] if absolute else float("nan"),
        absolute_p=absolute[2] if absolute else None,
    )  # fmt: skip


def _variant(
    ref: Tensor, others: list[Tensor], generator: torch.Generator
) -> tuple[float, float, float, float, list[float]] | None:
    """``(r, null_corr, p, min_p, c_k)`` of ``ref`` against ``others``; None when any of them is constant."""
    ranks = [_ranks(ref), *(_ranks(o) for o in others)]
    if any(r.std() == 0 for r in ranks):
        return None
    z = [(r - r.mean()) / r.std() for r in ranks]
    n = z[0].size
    corrs = [float(z[0] @ o / n) for o in z[1:]]
    trained = float(np.mean(corrs))
    pairs = [z[i] @ z[j] / n for i in range(1, len(z)) for j in range(i + 1, len(z))]
    null_corr = float(np.mean(pairs)) if pairs else float("nan")
    p = _null_p(trained, np.stack(z[1:]), z[0], generator)
    if len(corrs) == 1:  # one comparison (random logit, parameter families): the item null alone
        return trained, null_corr, p, 1 / (PERMUTATIONS + 1), corrs
    flip, min_flip = sign_flip_p(np.array(corrs), generator)
    return trained, null_corr, max(p, flip), min_flip, corrs


def sign_flip_p(values: np.ndarray, generator: torch.Generator) -> tuple[float, float]:
    """One-sided sign-flip p-value of ``mean(values (K,))`` under "each value is symmetric about 0":
    ``P(mean(s * |values|) >= mean(values))`` over the ``2^K`` sign patterns ``s`` (exact up to K = 16, else
    9999 random patterns); and the smallest p-value reachable, ``2^-K``."""
    k = values.size
    if k <= 16:
        signs = 1 - 2 * ((np.arange(2**k)[:, None] >> np.arange(k)) & 1)
        count, total = int(((signs * np.abs(values)).mean(1) >= values.mean() - 1e-12).sum()), 2**k
    else:
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        signs = rng.choice([-1.0, 1.0], size=(9999, k))
        count = 1 + int(((signs * np.abs(values)).mean(1) >= values.mean() - 1e-12).sum())
        total = 10000
    return count / total, max(2.0**-k, 1 / 10000 if k > 16 else 0.0)


def _null_p(trained: float, randomised: np.ndarray, reference: np.ndarray, generator: torch.Generator) -> float:
    """``P(null >= trained)`` for the mean correlation of ``reference (n,)`` with ``randomised (K, n)`` whose
    items are put in random orders: by 999 permutations for up to 50 items, else by the normal limit (mean 0,
    variance ``1 / (K (n - 1))``, exact moments of a permutation correlation)."""
    k, n = randomised.shape
    if n > 50:
        return 0.5 * math.erfc(trained * math.sqrt(k * (n - 1)) / math.sqrt(2))
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    perms = np.argsort(rng.random((PERMUTATIONS, k, n)), axis=2)
    null = (np.take_along_axis(np.broadcast_to(randomised, perms.shape), perms, 2) @ reference).mean(1) / n
    return (1 + int((null >= trained - 1e-12).sum())) / (PERMUTATIONS + 1)
