"""Early stopping from the ``early_stop`` config section.

* ``rule: lightning``: Lightning's :class:`~lightning.pytorch.callbacks.EarlyStopping` on ``monitor``
  (default ``val/top1``, ``mode`` max): stop once it has not improved by more than ``min_delta`` for
  ``patience`` validation checks.
* ``rule: paper``: the rule of the paper's code (:class:`PaperEarlyStopping`), which Lightning's callback
  cannot express because it looks at two metrics at once and at fixed epochs only.
* ``rule: none``: train for ``trainer.max_epochs``.

Either way the run's ``metrics.json`` gets an ``early_stop`` record (:func:`stop_record`): the rule, the
0-based epoch it stopped after (``null`` when it ran to the end) and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping

from conv3t.train.schema import EarlyStopConfig

__all__ = ["PaperEarlyStopping", "build_stopping_callbacks", "is_collapsed", "paper_check_epochs", "stop_record"]


def paper_check_epochs(check_from_epoch: int, every_n_epochs: int, max_epochs: int) -> list[int]:
    """0-based epochs at which the paper's rule compares validation metrics: 0, then ``check_from_epoch``,
    ``check_from_epoch + every_n_epochs``, ... below ``max_epochs`` (the authors: 0, 9, 14, 19, ...)."""
    later = range(check_from_epoch, max(max_epochs, 0), every_n_epochs) if every_n_epochs > 0 else []
    return sorted({0, *later})


def is_collapsed(predicted_counts: torch.Tensor, fraction: float) -> bool:
    """True if one class received at least ``fraction`` of the epoch's training predictions.

    ``predicted_counts`` is ``(C,)``: how many training clips of the epoch were predicted as each class.
    """
    total = float(predicted_counts.sum())
    return total > 0 and float(predicted_counts.max()) / total >= fraction


class PaperEarlyStopping(L.Callback):
    """The stopping rule of the paper's code, checked after each validation.

    * At the check epochs (:func:`paper_check_epochs`): stop if validation top-1 is lower **and** validation
      loss higher than at the previous check epoch (epoch 0 only sets the reference).
    * With ``collapse_epochs > 0``: an epoch whose training predictions put at least ``collapse_fraction`` of
      the clips in one class is *collapsed*; stop at the ``collapse_epochs``-th collapsed epoch, counted over
      the whole run as the authors' code counts them (not reset by a good epoch). A collapsed epoch is not
      used as a check epoch, as in their code.

    Reads ``val/top1`` and ``val/loss`` from the trainer's metrics and the module's ``train_pred_counts``.
    """

    def __init__(self, rule: EarlyStopConfig | None = None) -> None:
        rule = rule if rule is not None else EarlyStopConfig(rule="paper")
        self.check_from_epoch = rule.check_from_epoch
        self.check_every_n_epochs = rule.check_every_n_epochs
        self.collapse_epochs = rule.collapse_epochs
        self.collapse_fraction = rule.collapse_fraction
        self.last_top1 = -math.inf
        self.last_loss = math.inf
        self.collapsed = 0
        self.stopped_epoch: int | None = None
        self.reason = ""

    def state_dict(self) -> dict[str, Any]:
        keys = ("last_top1", "last_loss", "collapsed", "stopped_epoch", "reason")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for key, value in state_dict.items():
            setattr(self, key, value)

    def is_check_epoch(self, epoch: int) -> bool:
        if epoch == 0:
            return True
        past = epoch - self.check_from_epoch
        return past >= 0 and past % self.check_every_n_epochs == 0

    def update(self, epoch: int, top1: float, loss: float, collapsed: bool) -> bool:
        """Feed one epoch's numbers; returns True when the rule says stop (and records why)."""
        if collapsed:
            self.collapsed += 1
            if self.collapsed >= self.collapse_epochs:
                self.reason = f"training predictions collapsed onto one class in {self.collapsed} epochs"
                self.stopped_epoch = epoch
                return True
            return False
        if not self.is_check_epoch(epoch):
            return False
        stop = top1 < self.last_top1 and loss > self.last_loss
        if stop:
            self.reason = (
                f"at check epoch {epoch} val/top1 fell ({self.last_top1:.4f} -> {top1:.4f}) and val/loss rose "
                f"({self.last_loss:.4f} -> {loss:.4f})"
            )
            self.stopped_epoch = epoch
        self.last_top1, self.last_loss = top1, loss
        return stop

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.stopped_epoch is not None:
            return
        metrics = trainer.callback_metrics
        if "val/top1" not in metrics or "val/loss" not in metrics:
            return
        collapsed = False
        if self.collapse_epochs > 0:
            counts = getattr(pl_module, "train_pred_counts", None)
            if counts is not None:
                counts = trainer.strategy.reduce(counts.clone().float(), reduce_op="sum")
                collapsed = is_collapsed(counts, self.collapse_fraction)
        epoch = int(trainer.current_epoch)
        if self.update(epoch, float(metrics["val/top1"]), float(metrics["val/loss"]), collapsed):
            trainer.should_stop = True


def build_stopping_callbacks(stop_cfg: EarlyStopConfig) -> list[L.Callback]:
    """The callbacks of the ``early_stop`` section (empty for ``rule: none``)."""
    if stop_cfg.rule == "lightning":
        return [
            EarlyStopping(
                monitor=stop_cfg.monitor,
                mode=stop_cfg.mode,
                patience=stop_cfg.patience,
                min_delta=stop_cfg.min_delta,
                strict=True,
                check_finite=True,
            )
        ]
    if stop_cfg.rule == "paper":
        return [PaperEarlyStopping(stop_cfg)]
    return []


def stop_record(rule: str, callbacks: Sequence[L.Callback]) -> dict[str, Any]:
    """``{"rule", "stopped_epoch", "reason"}`` for metrics.json; ``stopped_epoch`` is None if it ran out."""
    for cb in callbacks:
        if isinstance(cb, PaperEarlyStopping):
            return {"rule": rule, "stopped_epoch": cb.stopped_epoch, "reason": cb.reason or None}
        if isinstance(cb, EarlyStopping):
            stopped = int(cb.stopped_epoch) if cb.stopped_epoch else None
            why = (
                f"{cb.monitor} did not improve by more than {abs(cb.min_delta)} in {cb.patience} validation checks"
                if stopped is not None
                else None
            )
            return {"rule": rule, "stopped_epoch": stopped, "reason": why}
    return {"rule": rule, "stopped_epoch": None, "reason": None}
