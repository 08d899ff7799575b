"""Parameter counts and FLOPs per clip of every registered family: its 2D original, 3T and 3D versions.

Models are built on PyTorch's ``meta`` device (shapes only: no memory, no initialisation, no arithmetic) and
FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` in eval mode: convolutions, matrix
products and the Conv3T kernel generation's products, as 2 x multiply-accumulates; elementwise operations,
normalisation and pooling are not counted. The 2D network's cost per clip is that of applying it to every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from conv3t.models.registry import count_parameters, create_model, list_models, model_spec
from conv3t.models.zoo import torchvision_2d

__all__ = ["FamilyCost", "family_costs", "forward_flops"]


@dataclass(frozen=True)
class FamilyCost:
    """One family: parameters and forward FLOPs per clip of ``frames x size x size`` (``flops_2d`` = ``frames``
    times the 2D network on one frame). ``in_paper``: the paper's hand-written 3T/3D models (their stems stride
    in time, so their FLOPs are not those of a same-length conversion)."""

    family: str
    in_paper: bool
    params_2d: int
    params_3t: int
    params_3d: int
    flops_2d: int
    flops_3t: int
    flops_3d: int


def forward_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of one eval-mode forward of ``model`` (on the meta device) on an input of ``shape``."""
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(shape, device="meta"))
    return int(counter.get_total_flops())


def _model_2d(arch: str, classes: int) -> nn.Module:
    extra = {"aux_logits": True, "init_weights": False} if arch == "googlenet" else {}
    return torchvision_2d(arch, classes, **extra)


def family_costs(
    families: list[str] | None = None, frames: int = 16, size: int = 112, classes: int = 27
) -> list[FamilyCost]:
    """:class:`FamilyCost` of each family (default: the paper's and every converted one, i.e. every family with
    a ``_3t`` and ``_3d`` registry name and a 2D original of its own; not ``resnet10``, a reduced ResNet18), for
    clips ``(1, 3, frames, size, size)`` and ``classes`` outputs."""
    if families is None:
        names = list_models()
        families = [
            n[:-3]
            for n in names
            if n.endswith("_3t")
            and f"{n[:-3]}_3d" in names
            and (model_spec(n).in_paper or model_spec(n).builds_weights)
        ]
    rows = []
    for family in families:
        arch = model_spec(f"{family}_3t").arch_2d
        if arch is None:
            continue
        with torch.device("meta"):
            m2d = _model_2d(arch, classes)
            m3t = create_model(f"{family}_3t", classes)
            m3d = create_model(f"{family}_3d", classes)
        clip = (1, 3, frames, size, size)
        rows.append(
            FamilyCost(
                family,
                model_spec(f"{family}_3t").in_paper,
                count_parameters(m2d),
                count_parameters(m3t),
                count_parameters(m3d),
                frames * forward_flops(m2d, (1, 3, size, size)),
                forward_flops(m3t, clip),
                forward_flops(m3d, clip),
            )
        )
    return rows
