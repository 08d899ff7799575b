"""``VideoClassifier``: the LightningModule that trains any registry model on clips.

Batches are ``(clips, labels)`` with clips ``(N, 3, T, H, W)`` float (normalised) and labels ``(N,)`` int64.
Loss is cross-entropy, weighted per class when ``class_weights`` is given (training and validation alike, as
the paper's code does); a GoogLeNet in training mode also returns two auxiliary logits whose losses are added
with weight ``loss.aux_weight`` (0.3, as in the GoogLeNet paper). Validation logs ``val/top1``, ``val/top5``,
``val/mean_class_acc`` (per-class recall averaged over classes present in the validation set) and
``val/loss``; the last validation's confusion matrix is kept in :attr:`VideoClassifier.last_confusion`.
Each epoch's training predictions per class (``train_pred_counts``, for the collapse rule of
:mod:`conv3t.train.stopping`) and the learning rate at each epoch's start (:attr:`VideoClassifier.lr_history`)
are kept too, with every validation's metrics (:attr:`VideoClassifier.val_history`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from conv3t.models import outputs
from conv3t.nn import randomize_temporal_parameters
from conv3t.train.config import validate_config
from conv3t.train.optim import build_optimizer, build_scheduler
from conv3t.train.schema import ExperimentConfig, LossConfig, ModelConfig

__all__ = [
    "VideoClassifier",
    "build_model",
    "inverse_frequency_weights",
    "mean_class_accuracy",
    "resolve_class_weights",
    "split_outputs",
    "training_label_counts",
]


def build_model(model_cfg: ModelConfig, num_classes: int) -> nn.Module:
    """``create_model`` from the ``model`` config section."""
    from conv3t.models import create_model

    model = create_model(
        model_cfg.name,
        num_classes=num_classes,
        pretrained=model_cfg.pretrained,
        inflate=model_cfg.inflate,
        transfer=model_cfg.transfer,
        init=model_cfg.init,
        aux_logits=model_cfg.aux_logits,
        **model_cfg.kwargs,
    )
    if model_cfg.temporal_init > 0:
        randomize_temporal_parameters(model, model_cfg.temporal_init, per_channel=model_cfg.temporal_init_per_channel)
    if model_cfg.channels_last_3d:
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def split_outputs(out: Any) -> tuple[Tensor, list[Tensor]]:
    """Main logits (:func:`conv3t.models.outputs.logits`, the rule every reader of an output shares) and the list of
    auxiliary logits (the other tensors of a GoogLeNetOutputs-like tuple; ``[]`` for a plain tensor)."""
    main = outputs.logits(out)
    aux = [o for o in out[1:] if isinstance(o, Tensor)] if isinstance(out, tuple | list) else []
    return main, aux


def inverse_frequency_weights(counts: Sequence[int]) -> list[float]:
    """Per-class loss weights ``(1 / n_c) / sum_k (1 / n_k)`` from the training clips per class ``n_c``.

    They sum to 1 (the scale of the paper's Jester weights; cross-entropy's weighted mean does not depend on
    it). A class without training clips makes the weights undefined: ValueError naming it.
    """
    missing = [c for c, n in enumerate(counts) if n <= 0]
    if missing:
        raise ValueError(f"loss.class_weights=inverse_frequency: class(es) {missing} have no training clips")
    inverse = [1.0 / n for n in counts]
    total = sum(inverse)
    return [w / total for w in inverse]


def training_label_counts(dataset: Any, num_classes: int) -> list[int]:
    """Training clips per class of ``dataset``: its ``label_counts()``, ``labels`` or ``label(i)``."""
    if hasattr(dataset, "label_counts"):
        found = dict(dataset.label_counts())
    elif hasattr(dataset, "labels"):
        found = {}
        for y in dataset.labels:
            found[int(y)] = found.get(int(y), 0) + 1
    elif hasattr(dataset, "label"):
        found = {}
        for i in range(len(dataset)):
            y = int(dataset.label(i))
            found[y] = found.get(y, 0) + 1
    else:
        raise ValueError(
            f"loss.class_weights=inverse_frequency: the {type(dataset).__name__} training set does not list its "
            "labels; give loss.class_weights as a list instead"
        )
    return [int(found.get(c, 0)) for c in range(num_classes)]


def resolve_class_weights(setting: str | Sequence[float] | None, datamodule: Any) -> list[float] | None:
    """``loss.class_weights`` as numbers: ``"inverse_frequency"`` is computed from ``datamodule``'s training
    set (set up here); a list or None is returned unchanged."""
    if setting != "inverse_frequency":
        return None if setting is None else [float(w) for w in setting]
    datamodule.setup("fit")
    return inverse_frequency_weights(training_label_counts(datamodule.train_set, len(datamodule.classes)))


def mean_class_accuracy(confusion: Tensor) -> float:
    """Per-class recall averaged over classes that occur (rows of ``confusion`` = true class)."""
    support = confusion.sum(dim=1)
    present = support > 0
    if not bool(present.any()):
        return float("nan")
    recall = confusion.diagonal()[present].double() / support[present].double()
    return float(recall.mean())


class VideoClassifier(L.LightningModule):
    """Train / validate a video classifier built from the config.

    Args:
        config: the experiment config (:class:`~conv3t.train.schema.ExperimentConfig`). It is stored as
            hyperparameters in its plain form (:meth:`ExperimentConfig.to_dict`: plain types only, so checkpoints
            load with ``torch.load(weights_only=True)``); a plain mapping, as checkpoints hold it, is validated
            into an ``ExperimentConfig`` first, so ``load_from_checkpoint`` reads checkpoints written before the
            config was typed (keys added since take their defaults).
        num_classes: classifier size.
        classes: class names, index = label (stored for the exported ``model.json``).
        model: an already built network; built from ``config.model`` when omitted.
        class_weights: ``(C,)`` per-class loss weights; default: ``config.loss.class_weights`` when that
            is a list (``"inverse_frequency"`` must be resolved by the caller from the training labels).
    """

    def __init__(
        self,
        config: ExperimentConfig | Mapping[str, Any],
        num_classes: int,
        classes: Sequence[str] | None = None,
        model: nn.Module | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        classes = [str(c) for c in classes] if classes is not None else [str(i) for i in range(num_classes)]
        if len(classes) != num_classes:
            raise ValueError(f"{len(classes)} class names for num_classes={num_classes}")
        # the data keys are the data module's business: a model loads without its dataset kind installed
        self.config = validate_config(config, source="VideoClassifier config", check_data=False)
        self.save_hyperparameters(
            {"config": self.config.to_dict(), "num_classes": int(num_classes), "classes": classes}
        )
        self.classes = classes
        self.num_classes = int(num_classes)
        self.model = model if model is not None else build_model(self.config.model, self.num_classes)
        self.channels_last = self.config.model.channels_last_3d
        self.aux_weight = self.config.loss.aux_weight
        self.label_smoothing = self.config.loss.label_smoothing
        self.register_buffer("class_weights", _class_weights(self.config.loss, class_weights, num_classes), False)
        self.register_buffer("train_pred_counts", torch.zeros(self.num_classes, dtype=torch.long), False)
        self.lr_history: list[dict[str, Any]] = []  # {"epoch", "lr": [per parameter group]} at each epoch start
        self.val_history: list[dict[str, float]] = []  # every validation's metrics (sanity checks excluded)
        k = min(5, self.num_classes)
        self.train_top1 = MulticlassAccuracy(self.num_classes, top_k=1, average="micro")
        self.val_top1 = MulticlassAccuracy(self.num_classes, top_k=1, average="micro")
        self.val_top5 = MulticlassAccuracy(self.num_classes, top_k=k, average="micro")
        self.val_confusion = MulticlassConfusionMatrix(self.num_classes)
        self.last_confusion: Tensor | None = None  # (C, C) counts, rows = true class
        self.last_val_metrics: dict[str, float] = {}

    # ----------------------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Any:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.model(x)

    def _loss(self, out: Any, y: Tensor) -> tuple[Tensor, Tensor]:
        logits, aux = split_outputs(out)
        w = self.class_weights
        loss = F.cross_entropy(logits, y, weight=w, label_smoothing=self.label_smoothing)
        for a in aux:
            loss = loss + self.aux_weight * F.cross_entropy(a, y, weight=w, label_smoothing=self.label_smoothing)
        return loss, logits

    # ---------------------------------------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        self.train_pred_counts.zero_()
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        if optimizer is not None:
            self.lr_history.append(
                {"epoch": int(self.current_epoch), "lr": [float(g["lr"]) for g in optimizer.param_groups]}
            )

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1]
        loss, logits = self._loss(self(x), y)
        # a comparison with every class, summed: bincount has no deterministic CUDA kernel (trainer.deterministic)
        # and one_hot checks the class range with two host-device syncs per step
        classes = torch.arange(self.num_classes, device=logits.device)
        self.train_pred_counts += (logits.detach().argmax(1)[:, None] == classes).sum(0)
        self.train_top1(logits.detach(), y)
        bs = y.shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=bs, sync_dist=True)
        self.log("train/top1", self.train_top1, prog_bar=True, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    # -------------------------------------------------------------------------------------------- validation
    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        x, y = batch[0], batch[1]
        logits, _ = split_outputs(self(x))
        loss = F.cross_entropy(logits, y, weight=self.class_weights)
        self.val_top1(logits, y)
        self.val_top5(logits, y)
        self.val_confusion(logits, y)
        bs = y.shape[0]
        self.log("val/loss", loss, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)
        self.log("val/top1", self.val_top1, prog_bar=True, on_step=False, on_epoch=True, batch_size=bs)
        self.log("val/top5", self.val_top5, on_step=False, on_epoch=True, batch_size=bs)

    def on_validation_epoch_end(self) -> None:
        confusion = self.val_confusion.compute().detach().cpu()
        self.val_confusion.reset()
        mca = mean_class_accuracy(confusion)
        self.log("val/mean_class_acc", mca, sync_dist=False)
        if not self.trainer.sanity_checking:
            self.last_confusion = confusion

    def on_validation_end(self) -> None:
        # Epoch-level values reach callback_metrics only after on_validation_epoch_end.
        if self.trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}
        metrics["epoch"] = int(self.current_epoch)
        metrics["global_step"] = int(self.global_step)
        self.last_val_metrics = metrics
        if self.trainer.state.fn == "fit":  # not the re-validation of best.ckpt after training
            self.val_history.append(dict(metrics))

    # ------------------------------------------------------------------------------------------- optimisers
    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model, self.config.optim)
        total = int(self.trainer.estimated_stepping_batches)
        max_epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        if self.trainer.max_steps and self.trainer.max_steps > 0:
            per_epoch = _steps_per_epoch(self.trainer) or total / max_epochs
        else:
            per_epoch = total / max_epochs
        sched = build_scheduler(optimizer, self.config.sched, total_steps=total, steps_per_epoch=per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": sched}


def _class_weights(loss_cfg: LossConfig, given: Sequence[float] | None, num_classes: int) -> Tensor | None:
    """The ``(C,)`` float32 weights to use, or None for plain cross-entropy; wrong lengths name the key."""
    setting = loss_cfg.class_weights
    if given is None and isinstance(setting, str):
        raise ValueError(f"loss.class_weights={setting!r} needs the training labels: pass class_weights")
    weights = given if given is not None else setting
    if weights is None:
        return None
    if len(weights) != num_classes:
        raise ValueError(f"loss.class_weights has {len(weights)} weights but the dataset has {num_classes} classes")
    return torch.tensor([float(w) for w in weights], dtype=torch.float32)


def _steps_per_epoch(trainer: L.Trainer) -> float | None:
    batches = trainer.num_training_batches
    if batches is None or batches == float("inf"):
        return None
    return batches / max(1, trainer.accumulate_grad_batches)
