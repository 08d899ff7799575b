"""The sanity check of Adebayo et al. (2018), "model-parameter randomisation", and the parameter-family
randomisation of 3T networks: how the randomised models are made. The test they feed is
:mod:`~conv3t.explain.faithfulness.sanity_stats` (one rule for every sanity test: up to ``K`` draws, the item
null and the sequential sign test, stopped once settled).

The layer groups of a model are its top-level children that hold parameters and run in the forward pass
(descending through a single wrapping child), in the order they *execute*, reversed: the last one to run (nearest
the output) first. The *cascade* randomises groups ``1..k`` of a deep copy of the model (never the caller's
model) and recomputes the explanation at each step; the Spearman rank correlation with the explanation of the
trained model says how much of the explanation survived (the whole curve is reported, not judged). Its last step
(every group randomised) is the test's first draw; further draws are independently, fully randomised copies
(:func:`fully_randomised`), each from its own seed, made only while the test needs them.

Randomising a group replaces every parameter tensor in it by independent zero-mean Gaussian draws with that
tensor's own root-mean-square (or 1 when it is 0): activations keep their scale while every learned value is
gone, the tensor's mean included (a mean is learned too: a temporal layer whose weights are all positive sums
its frames). BatchNorm's running statistics are kept (``batchnorm="keep"``, the default: the randomised weights
then see the trained normalisation) or reset to mean 0, variance 1 (``"reset"``).

The parameter-family checks of 3T networks (:data:`FAMILIES`: the 2D filters, or the temporal parameters) redraw
only that family of every Conv3T layer, each tensor around its *own* mean and std (``centre=False``): scales
near 1 and small rotations stay valid motions, where zero-mean draws would collapse or mirror every kernel and so
test "is the model broken" rather than "does the explanation depend on the learned motion". Such a copy is not
as likely as its negation, so its correlations need not be symmetric about 0: the sequential sign test does not
assume that they are, which is why it replaced the sign-flip test of the mean. A family failure means the
explanation keeps a consistent correlation over ``K`` redraws of the family: much of it is set by the other
parameters (a partly dependent explanation fails too); it does not show that the family plays no part.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from conv3t.explain.faithfulness.results import RandomisationStep
from conv3t.explain.faithfulness.sanity_stats import KINDS, channel_vector, randomisation_tests, spearman
from conv3t.explain.methods.explanation import Explainer, Explanation

__all__ = [
    "FAMILIES",
    "KINDS",
    "Explainer",
    "default_layer_groups",
    "family_randomised",
    "fully_randomised",
    "randomisation_cascade",
    "randomisation_tests",
    "randomise_",
    "spearman",
]


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
    ref_channels = channel_vector(reference, layers)
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
                channel_rank_corr=spearman(ref_channels, channel_vector(now, layers)),
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
