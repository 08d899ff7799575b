"""The experiment config as frozen dataclasses: every key, its type, its default and its allowed range, once.

One dataclass per YAML section (``model``, ``data``, ``optim``, ``sched``, ``loss``, ``early_stop``, ``trainer``,
``checkpoint``, ``logging``, ``cache``) and :class:`ExperimentConfig` for the whole file. A field's type hint is
the type a value is coerced to; its metadata (:func:`opt`) holds the allowed values (``choices``) and bounds
(``ge``, ``gt``, ``le``, ``lt``). :mod:`conv3t.train.config` reads YAML into these classes and checks every
field against that metadata and the relations between fields; the dotted command-line overrides
(:mod:`conv3t.train.overrides`) are generated from the same fields. Nothing else in ``conv3t.train`` writes a
default: the consumers read attributes.

:meth:`ExperimentConfig.to_dict` gives the plain nested mapping that ``config.yaml`` and the checkpoints'
hyperparameters hold (lists, not tuples, so ``torch.load(weights_only=True)`` and ``yaml.safe_dump`` take it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from conv3t.data.registry import LOADER_OPTIONS

__all__ = [
    "SECTIONS",
    "CacheConfig",
    "CheckpointConfig",
    "DataConfig",
    "EarlyStopConfig",
    "ExperimentConfig",
    "LoggingConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "SchedConfig",
    "TrainerConfig",
    "opt",
    "to_plain",
]

#: metadata key of a field that holds the section's other keys (``data``: the dataset's own options,
#: ``trainer``: further ``lightning.Trainer`` arguments); they are written flat into the section
REST = "rest"


def opt(
    default: Any = dataclasses.MISSING,
    *,
    choices: tuple[Any, ...] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A schema field of an immutable value: its default (none: the key is required), allowed values and
    numeric bounds (mutable defaults are ``field(default_factory=...)``)."""
    return field(default=default, metadata={"choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt})


@dataclass(frozen=True)
class ModelConfig:
    """``model:``: which network ``create_model`` builds and how it starts."""

    name: str = opt()  # required: a registered model (conv3t.models.list_models)
    pretrained: str | None = None  # None | "imagenet" | path to a 2D torchvision state dict
    # With pretrained: "repeat" copies the 2D filter into every time slice (a static clip gives D x the 2D
    # activations), "mean" divides it by the depth D (activations match the 2D network's). The authors' code
    # uses repeat for 3T models (K_1 = the 2D filter) and mean for 3D baselines (repeat_interleave / D).
    inflate: str = opt("repeat", choices=("repeat", "mean"))
    # With pretrained: "all" copies every tensor that fits (convolutions, BatchNorm weights and statistics,
    # heads); "conv_only" copies the backbone's convolution kernels only, as the authors' code does.
    transfer: str = opt("all", choices=("all", "conv_only"))
    # "default": torchvision's init (He-normal for ResNets, truncated normal std 0.01 for GoogLeNets);
    # "authors": PyTorch's default init of every layer with Conv3T 2D filters drawn from N(0, 1), as theirs.
    init: str = opt("default", choices=("default", "authors"))
    aux_logits: bool = True
    kwargs: dict[str, Any] = field(
        default_factory=dict
    )  # create_model keyword arguments of this model, e.g. base_width
    channels_last_3d: bool = False
    # > 0: start every Conv3T's rotation (radians) and translations (affine_grid units) uniformly in
    # [-a, a] per channel and step instead of the identity, so that channels prefer different motions from
    # the first step (helps small models trained from scratch; keep 0 for ImageNet-initialised models).
    temporal_init: float = opt(0.0, ge=0)
    # with temporal_init > 0: one draw per channel used at every step, so each channel starts as one
    # constant motion (its parameters then read as a motion, not as steps that change direction)
    temporal_init_per_channel: bool = False
    # true, or a mapping of torch.compile keywords ({fullgraph: true, mode: ...}): see conv3t.train.compiling
    compile: bool | dict[str, Any] = False


@dataclass(frozen=True)
class DataConfig:
    """``data:``: the dataset kind, the loader keys, and that kind's own options (checked against its
    registered signature, see :mod:`conv3t.data.registry`); all written flat in YAML."""

    dataset: str = opt()  # required: a registered dataset kind
    batch_size: int = opt(LOADER_OPTIONS["batch_size"], ge=1)  # clips per device
    num_workers: int = opt(LOADER_OPTIONS["num_workers"], ge=0)
    pin_memory: bool | None = LOADER_OPTIONS["pin_memory"]  # None: when CUDA is available
    persistent_workers: bool | None = LOADER_OPTIONS["persistent_workers"]  # None: when num_workers > 0
    options: dict[str, Any] = field(
        default_factory=dict, metadata={REST: True}
    )  # root, num_frames, size, ... of the dataset kind

    def as_mapping(self) -> dict[str, Any]:
        """The flat ``data:`` mapping :func:`conv3t.data.build_datamodule` takes."""
        return to_plain(self)


@dataclass(frozen=True)
class OptimConfig:
    """``optim:``: the optimiser and the learning rate and weight decay of each parameter group."""

    name: str = opt("adam", choices=("adam", "adamw", "sgd"))
    lr: float = opt(1e-3, gt=0)
    weight_decay: float = opt(0.0, ge=0)
    momentum: float = opt(0.9, ge=0)  # sgd
    nesterov: bool = False  # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw
    # Scale, rotation and translation of Conv3T layers: few numbers that may need their own rate.
    temporal_lr: float | None = opt(None, gt=0)  # None = same as lr
    # Weight decay would pull scale towards 0 instead of its identity value 1: off by default.
    temporal_weight_decay: float = opt(0.0, ge=0)
    norm_weight_decay: float = opt(0.0, ge=0)  # BatchNorm weights and all biases


@dataclass(frozen=True)
class SchedConfig:
    """``sched:``: the learning-rate schedule (see :mod:`conv3t.train.optim`)."""

    name: str = opt("cosine", choices=("cosine", "constant", "plateau"))
    warmup_epochs: float = opt(0.0, ge=0)  # linear warm-up from 0, per step; fractions of an epoch allowed
    min_lr_ratio: float = opt(0.0, ge=0)  # cosine ends at lr * min_lr_ratio
    # plateau: val top-1 checked at epochs 0, N, 2N, ... (N = plateau_every_n_epochs); rate x plateau_factor
    # after plateau_patience epochs (a multiple of N) without beating the best by > plateau_threshold
    plateau_factor: float = opt(0.1, gt=0, lt=1)
    plateau_patience: int = opt(5, ge=0)
    plateau_every_n_epochs: int = opt(1, ge=1)
    plateau_threshold: float = opt(0.0, ge=0)


@dataclass(frozen=True)
class LossConfig:
    """``loss:``: cross-entropy's options."""

    aux_weight: float = opt(0.3, ge=0)  # GoogLeNet: loss = main + aux_weight * (aux1 + aux2)
    label_smoothing: float = opt(0.0, ge=0, le=1)
    # null | inverse_frequency (training list) | one weight >= 0 per class; weights training and validation loss
    class_weights: str | tuple[float, ...] | None = opt(None, choices=("inverse_frequency",))


@dataclass(frozen=True)
class EarlyStopConfig:
    """``early_stop:``: rule none | lightning (monitor, mode, patience, min_delta) | paper (check_*,
    collapse_*); see :mod:`conv3t.train.stopping`."""

    rule: str = opt("none", choices=("none", "lightning", "paper"))
    monitor: str = "val/top1"
    mode: str = opt("max", choices=("max", "min"))
    patience: int = opt(10, ge=0)
    min_delta: float = opt(0.0, ge=0)
    check_from_epoch: int = opt(9, ge=0)
    check_every_n_epochs: int = opt(5, ge=1)
    collapse_epochs: int = opt(0, ge=0)
    collapse_fraction: float = opt(0.5, gt=0, le=1)


@dataclass(frozen=True)
class TrainerConfig:
    """``trainer:``: ``lightning.Trainer`` arguments. The common ones are fields; any other argument of the
    Trainer (max_time, profiler, plugins, ...) is accepted into :attr:`extra`, checked against its signature."""

    max_epochs: int = 30
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "auto"
    # A name ("ddp") or a mapping {name: ddp, find_unused_parameters: true, ...} built into that strategy.
    strategy: str | dict[str, Any] = "auto"
    num_nodes: int = opt(1, ge=1)
    precision: Any = "32-true"
    deterministic: Any = False  # True | False | "warn"
    benchmark: bool | None = None
    gradient_clip_val: float | None = opt(None, ge=0)
    accumulate_grad_batches: int = opt(1, ge=1)
    log_every_n_steps: int = opt(50, ge=1)
    val_check_interval: Any = None
    check_val_every_n_epoch: int = opt(1, ge=1)
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    num_sanity_val_steps: int = 2
    fast_dev_run: Any = False
    sync_batchnorm: bool = False
    enable_model_summary: bool = True
    extra: dict[str, Any] = field(default_factory=dict, metadata={REST: True})

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments for ``lightning.Trainer`` (None values left out: Lightning's defaults)."""
        return {k: v for k, v in to_plain(self).items() if v is not None}


@dataclass(frozen=True)
class CheckpointConfig:
    """``checkpoint:``: when ``last.ckpt`` and ``best.ckpt`` are written."""

    every_n_epochs: int = opt(1, ge=1)  # last.ckpt after every N epochs
    every_n_train_steps: int | None = opt(None, ge=1)  # also every N optimizer steps (long epochs)
    save_best: bool = True  # best.ckpt by validation top-1


@dataclass(frozen=True)
class LoggingConfig:
    """``logging:``: loggers and progress bar."""

    tensorboard: bool = False  # needs the `tensorboard` extra: pip install 'conv3t[tensorboard]'
    csv: bool = True
    progress_bar: str = opt("rich", choices=("rich", "tqdm", "none"))


@dataclass(frozen=True)
class CacheConfig:
    """``cache:``: render / decode the train and validation clips once and keep them in memory (small
    synthetic runs such as the demo). Every epoch then sees the same clips, so the two label-aware
    augmentations are applied on the cached tensors instead."""

    clips: bool = False
    flip: bool = False  # random left-right mirror, labels mapped by the dataset's flip_label_map
    reverse: bool = False  # random time reversal (synthetic tasks only: left<->right, cw<->ccw, ...)


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: the YAML file, validated (:func:`conv3t.train.config.load_config`)."""

    model: ModelConfig = field()  # required
    data: DataConfig = field()  # required
    seed: int = 0  # seed_everything(seed, workers=True)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)

    def to_dict(self) -> dict[str, Any]:
        """The plain nested mapping (YAML order: seed first): what ``config.yaml`` and checkpoints hold."""
        plain = to_plain(self)
        return {"seed": plain.pop("seed"), **plain}


#: YAML order of the sections, the top-level ``seed`` included
SECTIONS: tuple[str, ...] = ("seed", "model", "data", "optim", "sched", "loss", "early_stop", "trainer",
                             "checkpoint", "logging", "cache")  # fmt: skip


def to_plain(obj: Any) -> Any:
    """A schema object (or any nesting of dataclasses, mappings, tuples) as plain dicts, lists and scalars;
    a ``rest`` field's keys are written into its section."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = to_plain(getattr(obj, f.name))
            if f.metadata.get(REST):
                out.update(value)
            else:
                out[f.name] = value
        return out
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj
