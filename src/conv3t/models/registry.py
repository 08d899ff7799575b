"""Model registry: ``create_model(name, num_classes, ...)`` and ``list_models()``.

=============== ================================================ =============================
name            network                                          2D source of pretrained weights
=============== ================================================ =============================
resnet18_3t     ResNet18, Conv3T (paper: 3T-ResNet18)            torchvision resnet18
resnet18_3d     ResNet18, Conv3d (paper: 3D-ResNet18)            torchvision resnet18
googlenet_3t    GoogLeNet + 2 aux heads, Conv3T (3T-GoogLeNet)   torchvision googlenet
googlenet_3d    GoogLeNet + 2 aux heads, Conv3d (3D-GoogLeNet)   torchvision googlenet
resnet10_3t     reduced ResNet, 1 block per stage, Conv3T        resnet18 (first block of each stage)
resnet10_3d     reduced ResNet, 1 block per stage, Conv3d        resnet18 (first block of each stage)
=============== ================================================ =============================

The ResNet10 variants are not in the paper: they are small models for CPU demos and quick experiments,
usually with a narrower ``base_width`` (e.g. ``create_model("resnet10_3t", 9, base_width=16)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from conv3t.models.googlenet import googlenet_3d, googlenet_3t
from conv3t.models.initialisation import INIT_MODES, authors_init_
from conv3t.models.resnet import resnet10_3d, resnet10_3t, resnet18_3d, resnet18_3t
from conv3t.models.transfer import (
    INFLATE_MODES,
    TRANSFER_MODES,
    imagenet_state_dict,
    load_2d_state_dict,
    transfer_2d_weights,
)
from conv3t.nn import batch_kernel_generation, conv3t_layers

__all__ = [
    "PAPER_PARAMETER_COUNTS",
    "ModelSpec",
    "architecture_kwargs",
    "count_parameters",
    "create_model",
    "list_models",
    "model_spec",
    "register_model",
]

PAPER_PARAMETER_COUNTS: dict[str, dict[int, int]] = {
    "googlenet_3t": {27: 7_419_121, 101: 7_646_671},
    "googlenet_3d": {27: 14_078_833, 101: 14_306_383},
    "resnet18_3t": {27: 11_222_619, 101: 11_260_581},
    "resnet18_3d": {27: 33_217_755, 101: 33_255_717},
}
"""Table 1 of the paper: parameters (auxiliary heads included) for Jester (27) and UCF101 (101) classes."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model (see :func:`register_model`).

    Attributes:
        name: the registry name (``create_model(name, ...)``, ``model.name`` in configs, ``model.json``).
        builder: ``builder(num_classes, **kwargs) -> nn.Module``; the model takes ``(N, 3, T, H, W)`` clips.
        variant: ``"3t"`` (Conv3T layers) or ``"3d"`` (Conv3d), for tables and comparisons.
        arch_2d: the torchvision 2D architecture whose weights :func:`create_model` transfers with
            ``pretrained`` (``"resnet18"``, ``"googlenet"``), or ``None`` if the model cannot take 2D weights.
        description: one line for listings.
        in_paper: one of the paper's Table 1 networks.
        kwargs: the keyword arguments ``create_model`` passes on to ``builder``; each only shapes the
            architecture (an exported ``model.json`` may set exactly these).
        aux_logits: the builder takes ``aux_logits`` (auxiliary classifier heads, GoogLeNet).
        imagenet_kwargs: with ``pretrained="imagenet"``: ``f(name, kwargs) -> kwargs`` adjusts or refuses the
            architecture keywords so that they fit torchvision's ImageNet weights (``None``: as given).
    """

    name: str
    builder: Callable[..., nn.Module]
    variant: str
    arch_2d: str | None
    description: str
    in_paper: bool = False
    kwargs: tuple[str, ...] = ()
    aux_logits: bool = False
    imagenet_kwargs: Callable[[str, dict[str, object]], dict[str, object]] | None = None


_SPECS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (importing the module that calls this registers the model); returns it.

    Raises:
        ValueError: the name is taken, or ``variant`` is not ``"3t"`` / ``"3d"``.
    """
    if spec.name in _SPECS:
        raise ValueError(f"model {spec.name!r} is registered already ({_SPECS[spec.name].description})")
    if spec.variant not in ("3t", "3d"):
        raise ValueError(f"model {spec.name!r}: variant must be '3t' or '3d', got {spec.variant!r}")
    _SPECS[spec.name] = spec
    return spec


# Keyword arguments each built-in family accepts through create_model (everything else is an error).
_RESNET_KWARGS = ("base_width", "stem_temporal_stride", "zero_init_residual", "in_channels")
_GOOGLENET_KWARGS = ("transform_input", "dropout", "dropout_aux", "stem_temporal_stride", "init_weights", "style")


def _imagenet_resnet(name: str, kwargs: dict[str, object]) -> dict[str, object]:
    width = kwargs.get("base_width", 64)
    if width != 64:
        raise ValueError(f"pretrained='imagenet' needs base_width=64 (torchvision's resnet18), got base_width={width}")
    return kwargs


def _imagenet_googlenet(name: str, kwargs: dict[str, object]) -> dict[str, object]:
    """torchvision's ImageNet GoogLeNet was trained on ``[-1, 1]``-scaled input: its weights need the transform.

    ``style="authors"`` may turn it off: the authors' code fed ImageNet-normalised clips to the transferred
    weights without it, and the paper's numbers come from that.
    """
    requested = kwargs.get("transform_input")
    if kwargs.get("style") == "authors" and requested is False:
        return kwargs
    if requested is None or requested is True:
        return {**kwargs, "transform_input": True}
    raise ValueError(
        f"create_model({name!r}, pretrained='imagenet') needs transform_input=True: torchvision's ImageNet "
        f"GoogLeNet weights expect input rescaled from ImageNet normalisation to [-1, 1], got "
        f"transform_input={requested!r} (leave it unset, or use pretrained=None / a 2D file)"
    )


def _register_builtin() -> None:
    resnet = {"kwargs": _RESNET_KWARGS, "imagenet_kwargs": _imagenet_resnet}
    googlenet = {"kwargs": _GOOGLENET_KWARGS, "aux_logits": True, "imagenet_kwargs": _imagenet_googlenet}
    for spec in (
        ModelSpec("resnet18_3t", resnet18_3t, "3t", "resnet18", "ResNet18 with 3TConv filters", True, **resnet),
        ModelSpec("resnet18_3d", resnet18_3d, "3d", "resnet18", "ResNet18 with 3D convolutions", True, **resnet),
        ModelSpec("googlenet_3t", googlenet_3t, "3t", "googlenet", "GoogLeNet with 3TConv filters", True, **googlenet),
        ModelSpec("googlenet_3d", googlenet_3d, "3d", "googlenet", "GoogLeNet with 3D convolutions", True, **googlenet),
        ModelSpec("resnet10_3t", resnet10_3t, "3t", "resnet18", "reduced ResNet (1 block/stage), 3TConv", **resnet),
        ModelSpec("resnet10_3d", resnet10_3d, "3d", "resnet18", "reduced ResNet (1 block/stage), 3D conv", **resnet),
    ):
        register_model(spec)  # type: ignore[arg-type]


_register_builtin()


def architecture_kwargs(name: str) -> tuple[str, ...]:
    """The keyword arguments of ``create_model(name, ...)`` that only shape the architecture.

    ``base_width``, ``transform_input``, ... and, for GoogLeNets, ``aux_logits``; never ``pretrained`` or
    ``inflate``, which read files. An exported ``model.json`` may set only these
    (:func:`conv3t.exported.load_exported`).
    """
    spec = model_spec(name)
    return (*spec.kwargs, "aux_logits") if spec.aux_logits else spec.kwargs


def list_models() -> list[str]:
    """Registered model names, paper models first: ``resnet18_3t, resnet18_3d, googlenet_3t, ...``."""
    return [spec.name for spec in sorted(_SPECS.values(), key=lambda spec: not spec.in_paper)]


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; :class:`ValueError` listing the available names if unknown."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(_SPECS)}") from None


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter entries of ``model`` (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def create_model(
    name: str,
    num_classes: int,
    pretrained: str | os.PathLike[str] | None = None,
    aux_logits: bool = True,
    inflate: str = "repeat",
    transfer: str = "all",
    init: str = "default",
    **kwargs: object,
) -> nn.Module:
    """Build a registered video model, optionally from 2D ImageNet / torchvision weights.

    Args:
        name: one of :func:`list_models`.
        num_classes: classifier size (27 for Jester, 101 for UCF101).
        pretrained: ``None`` (scratch, torchvision-style init, temporal parameters at identity),
            ``"imagenet"`` (torchvision's ImageNet weights from the torch hub cache, downloaded when missing
            unless ``CONV3T_OFFLINE=1``; see
            :func:`conv3t.models.transfer.imagenet_state_dict`) or a path to a 2D torchvision state dict file
            (``.pth``/``.pt`` read with ``weights_only=True``, or ``.safetensors``).
        aux_logits: GoogLeNet only: build the two auxiliary heads (Table 1 counts them). ResNets have none and
            ignore it.
        inflate: with ``pretrained``: ``"repeat"`` (default, the paper's code) or ``"mean"`` (divide the 2D
            filter by the temporal depth ``D``, for Conv3d and Conv3T alike, so a static clip gives the 2D
            network's activations and its BatchNorm statistics fit; see :mod:`conv3t.models.transfer`).
        transfer: with ``pretrained``: ``"all"`` (default: convolutions, BatchNorm and the heads whose shapes
            fit) or ``"conv_only"`` (the backbone's convolution kernels only, as the authors' code; BatchNorm,
            auxiliary heads and ``fc`` keep their initialisation).
        init: ``"default"`` (torchvision's init: He-normal for ResNets, truncated normal std 0.01 for
            GoogLeNets) or ``"authors"`` (as the authors' code: PyTorch's default init of every layer, Conv3T 2D
            filters N(0, 1); see :func:`conv3t.models.initialisation.authors_init_`). Applied before
            ``pretrained`` weights are copied.
        **kwargs: ResNets: ``base_width`` (64), ``stem_temporal_stride`` (2), ``zero_init_residual`` (False),
            ``in_channels`` (3). GoogLeNets: ``transform_input`` (False; True with ``pretrained="imagenet"``,
            which refuses False because torchvision's ImageNet weights expect it), ``dropout`` (0.4),
            ``dropout_aux`` (0.7), ``stem_temporal_stride`` (2), ``init_weights`` (True), ``style``
            (``"torchvision"``; ``"authors"`` for the authors' BatchNorm eps and pooling, see
            :mod:`conv3t.models.googlenet`).

    Returns:
        The model (train mode). A 3T model builds the kernels of its Conv3T layers together in each training
        forward (:func:`conv3t.nn.batch_kernel_generation`; ``batch_kernel_generation(model, enabled=False)``
        switches that off). With ``pretrained``, ``model.transfer_report`` is the
        :class:`~conv3t.models.transfer.TransferReport`; without, it is ``None``.

    Raises:
        ValueError: unknown name, bad ``inflate``, or weights that do not fit (the message names the key).
        TypeError: a keyword argument the model does not accept.
        FileNotFoundError: ``"imagenet"`` without the cached file (the message gives the path), or a missing
            weights file.
    """
    spec = model_spec(name)
    _check_choices(num_classes, inflate=inflate, transfer=transfer, init=init)
    unknown = sorted(set(kwargs) - set(spec.kwargs))
    if unknown:
        raise TypeError(
            f"create_model({name!r}) got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"{name} accepts: num_classes, pretrained, aux_logits, inflate, transfer, init, {', '.join(spec.kwargs)}"
        )
    if spec.aux_logits:
        kwargs["aux_logits"] = aux_logits
    imagenet = isinstance(pretrained, str) and pretrained == "imagenet"
    if pretrained is not None and spec.arch_2d is None:
        raise ValueError(f"create_model({name!r}): this model has no 2D architecture to take pretrained weights from")
    if imagenet and spec.imagenet_kwargs is not None:
        kwargs = spec.imagenet_kwargs(name, kwargs)
    model = spec.builder(num_classes, **kwargs)
    if init == "authors":
        authors_init_(model)
    if conv3t_layers(model, min_depth=2):
        # one computation of the sampling matrices per kernel size and training forward instead of one per layer
        # (same values and gradients; see conv3t.nn.batched)
        batch_kernel_generation(model)
    model.transfer_report = None  # type: ignore[assignment]
    if pretrained is None:
        return model

    model.transfer_report = _transfer(model, spec, pretrained, inflate, transfer)  # type: ignore[assignment]
    return model


def _check_choices(num_classes: object, **choices: str) -> None:
    """ValueError naming the argument: a bad class count, ``inflate``, ``transfer`` or ``init``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    allowed = {"inflate": INFLATE_MODES, "transfer": TRANSFER_MODES, "init": INIT_MODES}
    for argument, value in choices.items():
        if value not in allowed[argument]:
            raise ValueError(f"{argument} must be one of {allowed[argument]}, got {value!r}")


def _transfer(
    model: nn.Module, spec: ModelSpec, pretrained: str | os.PathLike[str], inflate: str, transfer: str
) -> object:
    """Copy ``pretrained`` 2D weights into ``model``; the :class:`~conv3t.models.transfer.TransferReport`."""
    if isinstance(pretrained, str) and pretrained == "imagenet":
        state = imagenet_state_dict(spec.arch_2d)  # type: ignore[arg-type]
        source = f"imagenet:{spec.arch_2d}"
    else:
        path = Path(pretrained)
        state = load_2d_state_dict(path)
        source = str(path)
    return transfer_2d_weights(model, state, inflate=inflate, source=source, transfer=transfer)  # type: ignore[arg-type]
