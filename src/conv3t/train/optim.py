"""Optimiser and learning-rate schedule from the ``optim`` / ``sched`` config sections.

Parameters fall into three groups:

* ``temporal``: the scale / rotation / translation parameters of :class:`~conv3t.Conv3T` layers. They are
  few (4 per output channel and time step) and move the whole 3D kernel, so they get their own learning rate
  (``optim.temporal_lr``, default = ``optim.lr``) and no weight decay by default (decay would pull the scale
  towards 0 instead of its identity value 1).
* ``no_decay``: biases and normalisation weights (1-D tensors), ``optim.norm_weight_decay`` (default 0).
* ``decay``: everything else (convolution and linear weights), ``optim.weight_decay``.

The schedule is stepped per optimizer step: linear warm-up over ``sched.warmup_epochs`` then cosine decay
to ``lr * min_lr_ratio`` (``cosine``) or flat (``constant``); ``plateau`` (:class:`CheckedPlateau`) multiplies
every group's rate by ``plateau_factor`` when validation top-1 stops improving, looking only at epochs 0, N, 2N, ...
(``N = plateau_every_n_epochs``). The authors' protocol is N = 10, patience 0, factor 0.5.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from conv3t.nn import TEMPORAL_PARAMETER_NAMES, conv3t_layers
from conv3t.train.schema import OptimConfig, SchedConfig

__all__ = [
    "TEMPORAL_PARAMETER_NAMES",
    "CheckedPlateau",
    "build_optimizer",
    "build_scheduler",
    "lr_multiplier",
    "parameter_groups",
]


def parameter_groups(model: nn.Module, optim_cfg: OptimConfig) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into temporal / no-decay / decay groups (empty groups dropped).

    Each group carries a ``name`` key (``"temporal"``, ``"no_decay"``, ``"decay"``) so logs can tell them apart.
    """
    temporal_ids: set[int] = set()
    for _, layer in conv3t_layers(model):
        temporal_ids.update(id(p) for p in layer.temporal_parameters().values())
    temporal, no_decay, decay = [], [], []
    seen: set[int] = set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) in temporal_ids:
            temporal.append(p)
        elif p.ndim <= 1:
            no_decay.append(p)
        else:
            decay.append(p)
    lr = optim_cfg.lr
    groups = [
        {"name": "decay", "params": decay, "lr": lr, "weight_decay": optim_cfg.weight_decay},
        {"name": "no_decay", "params": no_decay, "lr": lr, "weight_decay": optim_cfg.norm_weight_decay},
        {
            "name": "temporal",
            "params": temporal,
            "lr": optim_cfg.temporal_lr if optim_cfg.temporal_lr is not None else lr,
            "weight_decay": optim_cfg.temporal_weight_decay,
        },
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, optim_cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD (with momentum) over :func:`parameter_groups`."""
    groups = parameter_groups(model, optim_cfg)
    name, lr = optim_cfg.name, optim_cfg.lr
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=optim_cfg.betas)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=optim_cfg.betas)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim_cfg.momentum, nesterov=optim_cfg.nesterov)
    raise ValueError(f"optim.name must be adam, adamw or sgd, got {name!r}")


def lr_multiplier(step: int, total_steps: int, warmup_steps: int, kind: str, min_lr_ratio: float) -> float:
    """Factor applied to every group's base rate after ``step`` optimizer steps.

    Linear warm-up ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, then ``1`` (``constant``)
    or a half cosine from 1 down to ``min_lr_ratio`` reached at ``total_steps`` (``cosine``).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class CheckedPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` (mode max, absolute threshold) that only looks at every ``every_n_epochs``-th call.

    Lightning calls :meth:`step` once per epoch with validation top-1 (a fraction in [0, 1]). Calls 0, N, 2N, ...
    are checks; a check that does not beat the best earlier check by more than ``threshold`` is bad, and after
    ``patience_checks + 1`` bad checks in a row every group's rate is multiplied by ``factor``. The counter is
    part of :meth:`state_dict`, so a resumed run keeps the same check epochs.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        factor: float,
        patience_checks: int,
        every_n_epochs: int,
        threshold: float = 0.0,
    ) -> None:
        super().__init__(
            optimizer, mode="max", factor=factor, patience=patience_checks, threshold=threshold, threshold_mode="abs"
        )
        self.every_n_epochs = int(every_n_epochs)
        self.calls = 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        call, self.calls = self.calls, self.calls + 1
        if call % self.every_n_epochs == 0:
            super().step(metrics)


def build_scheduler(
    optimizer: torch.optim.Optimizer, sched_cfg: SchedConfig, total_steps: int, steps_per_epoch: float
) -> dict[str, Any]:
    """A Lightning ``lr_scheduler`` config dict for ``optimizer``.

    ``total_steps`` is the number of optimizer steps of the whole run, ``steps_per_epoch`` of one epoch (used
    to turn ``warmup_epochs`` into steps).
    """
    kind = sched_cfg.name
    if kind == "plateau":
        every = sched_cfg.plateau_every_n_epochs
        plateau = CheckedPlateau(
            optimizer,
            factor=sched_cfg.plateau_factor,
            patience_checks=sched_cfg.plateau_patience // every,
            every_n_epochs=every,
            threshold=sched_cfg.plateau_threshold,
        )
        return {"scheduler": plateau, "interval": "epoch", "monitor": "val/top1", "strict": False}
    warmup = round(sched_cfg.warmup_epochs * steps_per_epoch)
    min_ratio = sched_cfg.min_lr_ratio

    # A closure (not a callable object) keeps LambdaLR.state_dict free of pickled code.
    def factor(step: int) -> float:
        return lr_multiplier(step, total_steps, warmup, kind, min_ratio)

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}
