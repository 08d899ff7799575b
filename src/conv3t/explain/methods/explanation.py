"""One prediction's explanation as a typed value (:class:`Explanation`, in any method's terms) and conv3t's own
explanation (:func:`explain_clip`, :func:`conv3t_explainer`): the
channels credited by gradient x activation and the per-frame Grad-CAM of :mod:`conv3t.explain.methods.attribution`, and
the frame attribution of :mod:`conv3t.explain.methods.frame_attribution` (default: the one that passes its checks on the
demo models), for any video classifier."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from conv3t.explain.methods.attribution import ChannelAttribution, grad_cam, gradcam_layer
from conv3t.explain.methods.frame_attribution import DEFAULT_FRAME_ATTRIBUTION, FRAME_ATTRIBUTIONS, frame_attribution
from conv3t.explain.methods.layers import temporal_layers

__all__ = ["KINDS", "Explainer", "Explanation", "conv3t_explainer", "explain_clip", "takes_kinds"]

#: The kinds of explanation an explainer fills: the fields the randomisation checks compare.
KINDS = ("gradcam", "frame_importance", "channels")


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
        gradcam_layer: the layer whose output resolution the map was computed at (a Grad-CAM's layer): the
            spatial check draws its random maps at that resolution and upsamples them as the map was
            (trilinear); without it (and without ``gradcam_shape``) the spatial check is not testable.
        gradcam_shape: ``(T', H', W')`` the map's own resolution, when it is not a module's output (a pixel-level
            map: the clip's ``(T, H, W)``).
        method: the method that made the explanation (``"conv3t/<frame method>/<top channels>"``:
            :func:`conv3t_explainer` with that frame attribution and channel count), so that the randomisation
            check can recompute the same explanation without being handed the explainer.

    Any field may be left empty; the checks that need it are then left out.
    """

    channels: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    frame_importance: Tensor | None = None
    gradcam: Tensor | None = None
    channel_scores: Mapping[str, Tensor] | None = None
    gradcam_layer: str | None = None
    gradcam_shape: tuple[int, int, int] | None = None
    method: str | None = None

    @property
    def credited(self) -> int:
        """How many channels are credited, over all layers."""
        return sum(len(c) for c in self.channels.values())


#: ``explainer(model, clip (1, C, T, H, W), target) -> Explanation`` with the fields to compare filled. An explainer
#: that also takes ``kinds=`` (a subset of :data:`KINDS`; :func:`takes_kinds`) computes only those, which the
#: randomisation checks use once a kind's verdict is settled (a frame attribution by integrated gradients is most
#: of an explanation's cost).
Explainer = Callable[[nn.Module, Tensor, int], Explanation]


def takes_kinds(explainer: Explainer) -> bool:
    """True when ``explainer`` accepts the keyword ``kinds`` (it can compute part of an explanation)."""
    try:
        return "kinds" in inspect.signature(explainer).parameters
    except (TypeError, ValueError):  # a builtin or a C callable without a signature
        return False


def conv3t_explainer(
    layers: Sequence[str] | None = None,
    cam_layer: str | None = None,
    top_channels: int = 5,
    frame_method: str = DEFAULT_FRAME_ATTRIBUTION,
) -> Explainer:
    """An explainer ``(model, clip (1, C, T, H, W), target, kinds=None) -> Explanation`` with every field filled
    (or only the ``kinds`` asked for, of :data:`KINDS`; the others are None, ``channels`` empty).

    Args:
        layers: layers whose channels are attributed (default :func:`temporal_layers` of the model).
        cam_layer: the Grad-CAM layer (default :func:`conv3t.explain.methods.attribution.gradcam_layer` of ``layers``).
        top_channels: how many channels with the largest positive attribution are credited (over all layers).
        frame_method: the frame attribution (:data:`conv3t.explain.methods.frame_attribution.FRAME_ATTRIBUTIONS`).
    """
    if frame_method not in FRAME_ATTRIBUTIONS:
        raise ValueError(f"frame_method must be one of {sorted(FRAME_ATTRIBUTIONS)}, got {frame_method!r}")

    def explain(model: nn.Module, clip: Tensor, target: int, kinds: Collection[str] | None = None) -> Explanation:
        wanted = set(KINDS if kinds is None else kinds)
        if wanted - set(KINDS):
            raise ValueError(f"kinds must be among {KINDS}, got {sorted(wanted - set(KINDS))}")
        names = list(layers) if layers else temporal_layers(model)
        scores = None
        credited: dict[str, tuple[int, ...]] = {}
        if "channels" in wanted:
            scores = {n: a[0] for n, a in ChannelAttribution(model, names).attribute(clip, target).items()}
            ranked = sorted(((float(v), n, c) for n, a in scores.items() for c, v in enumerate(a)), key=lambda r: -r[0])
            for value, name, c in ranked[:top_channels]:
                if value > 0:
                    credited[name] = (*credited.get(name, ()), c)
        where = cam_layer or gradcam_layer(model, names, tuple(clip.shape[1:]))
        cam = grad_cam(model, where, clip, target)[0] if "gradcam" in wanted else None
        importance = frame_attribution(model, clip, target, frame_method)[0] if "frame_importance" in wanted else None
        return Explanation(
            channels=credited,
            frame_importance=importance,
            gradcam=cam,
            channel_scores=scores,
            gradcam_layer=where,
            method=f"conv3t/{frame_method}/{top_channels}",
        )

    return explain


def explain_clip(
    model: nn.Module,
    clip: Tensor,
    target: int,
    layers: Sequence[str] | None = None,
    cam_layer: str | None = None,
    top_channels: int = 5,
    frame_method: str = DEFAULT_FRAME_ATTRIBUTION,
) -> Explanation:
    """conv3t's explanation of ``model``'s class ``target`` on one clip ``(C, T, H, W)`` or ``(1, C, T, H, W)``
    (see :func:`conv3t_explainer`); the model is used as it is (put it in eval mode)."""
    x = clip if clip.ndim == 5 else clip[None]
    with torch.enable_grad():
        return conv3t_explainer(layers, cam_layer, top_channels, frame_method)(model, x.detach(), int(target))
