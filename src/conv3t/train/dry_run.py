"""``conv3t train --dry-run``: everything a run would use, checked and printed, without training.

Users on clusters check a job this way before they queue it: the resolved config, the data check (as
``conv3t data check`` reports it), the dataset sizes, the model and its parameter count, steps per epoch, the
schedule and stopping rule, where the ImageNet weights would come from and where the outputs would go. The
model is built without its pretrained weights (a dry run downloads nothing); whether they are available is
reported instead.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conv3t.train.config import config_text
from conv3t.train.schema import ExperimentConfig, ModelConfig, TrainerConfig

__all__ = ["DryRunReport", "dry_run", "steps_per_epoch"]


@dataclass(frozen=True)
class DryRunReport:
    """What :func:`dry_run` found: the text to print and whether a run could start (``ok``)."""

    text: str
    ok: bool


def steps_per_epoch(num_train: int, batch_size: int, world_size: int, accumulate: int = 1) -> tuple[int, int]:
    """``(batches per device, optimizer steps)`` of one training epoch.

    The training sampler gives every process ``ceil(num_train / world_size)`` clips (padding by repetition) and
    drops the last incomplete batch when there is at least one full batch; an optimizer step takes
    ``accumulate`` batches (Lightning steps on a final partial group too).
    """
    per_rank = math.ceil(num_train / max(1, world_size))
    batches = per_rank // batch_size if per_rank >= batch_size else (1 if per_rank else 0)
    return batches, math.ceil(batches / max(1, accumulate))


def _world_size(trainer_cfg: TrainerConfig) -> int | None:
    devices, nodes = trainer_cfg.devices, trainer_cfg.num_nodes
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        return devices * nodes
    if isinstance(devices, list):
        return len(devices) * nodes
    return None  # "auto" or -1: decided by the machine the job lands on


def _weights_line(model_cfg: ModelConfig) -> tuple[str, bool]:
    """Where the initial weights come from, and False when the run could not get them."""
    pretrained, init = model_cfg.pretrained, model_cfg.init
    if pretrained is None:
        return f"weights: random initialisation (trained from scratch), init={init}", True
    inflate = f"{model_cfg.inflate}, transfer={model_cfg.transfer}, init={init}"
    if pretrained != "imagenet":
        found = Path(pretrained).is_file()
        return f"weights: 2D state dict {pretrained} ({'found' if found else 'MISSING'}), inflate={inflate}", found
    from conv3t.models import model_spec
    from conv3t.models.transfer import imagenet_checkpoint_path, imagenet_weights_url, offline

    arch = model_spec(model_cfg.name).arch_2d
    if arch is None:
        return f"weights: {model_cfg.name} has no ImageNet counterpart", False
    path = imagenet_checkpoint_path(arch)
    url = imagenet_weights_url(arch)
    if path.is_file():
        state = "cached"
    elif offline():
        state = f"NOT cached and downloads are off (CONV3T_OFFLINE / HF_HUB_OFFLINE): put {url} there"
    else:
        state = f"not cached: the run downloads {url}"
    return f"weights: torchvision {arch} ImageNet, inflate={inflate}, {path} ({state})", path.is_file() or not offline()


def _data_check(data_cfg: Mapping[str, Any]) -> tuple[str, bool]:
    from conv3t.data.check import check_data_config

    try:
        report = check_data_config(data_cfg)
    except (ValueError, OSError) as err:
        return f"data check: {err}", False
    return report.format(), report.ok


def dry_run(config: ExperimentConfig, run_dir: str | os.PathLike[str], resume: bool = False) -> DryRunReport:
    """Check and describe the run of the validated ``config`` in ``run_dir``; nothing is trained or written.

    ``ok`` is False when the data check finds problems (missing root, unreadable lists, missing frames), the
    data / model settings cannot be built, or the initial weights are out of reach (a missing
    ``model.pretrained`` file; ImageNet weights not cached while offline); the text then says why.
    """
    from conv3t.data import build_datamodule
    from conv3t.train.module import build_model, resolve_class_weights
    from conv3t.train.run import checkpoint_paths

    out = ["resolved config:", config_text(config).rstrip()]
    check_text, ok = _data_check(config.data.as_mapping())
    out += ["", "data check:", check_text]
    if not ok:
        out.append("dry run: the data check failed; fix the data settings above before queueing this job")
        return DryRunReport("\n".join(out), False)
    try:
        dm = build_datamodule(config.data.as_mapping())
        dm.setup("fit")
        weights = resolve_class_weights(config.loss.class_weights, dm)
        model = build_model(dataclasses.replace(config.model, pretrained=None), len(dm.classes))
    except (TypeError, ValueError, KeyError, OSError) as err:
        out.append(f"dry run: cannot build the run from its data / model settings: {type(err).__name__}: {err}")
        return DryRunReport("\n".join(out), False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    weights_line, weights_ok = _weights_line(config.model)
    out += ["", f"model: {config.model.name}, {len(dm.classes)} classes, {trainable:,} trainable parameters"
            f" ({total:,} in all)", weights_line]  # fmt: skip
    if weights is not None:
        out.append(f"class weights ({config.loss.class_weights}): " + ", ".join(f"{w:.4f}" for w in weights))
    out += _schedule_lines(config, len(dm.train_set), len(dm.val_set))
    out += _output_lines(Path(run_dir), resume, checkpoint_paths(run_dir)[0])
    if not weights_ok:
        out.append("dry run: the run could not get its initial weights (see 'weights:' above)")
    return DryRunReport("\n".join(out), weights_ok)


def _schedule_lines(config: ExperimentConfig, num_train: int, num_val: int) -> list[str]:
    tr, sched, stop = config.trainer, config.sched, config.early_stop
    batch = config.data.batch_size
    world = _world_size(tr)
    batches, steps = steps_per_epoch(num_train, batch, world or 1, tr.accumulate_grad_batches)
    where = f"{world} process(es)" if world else "1 process (trainer.devices is 'auto': divide by the devices used)"
    lines = [
        f"data: {num_train} training clips, {num_val} validation clips; batch {batch} per device",
        f"steps per epoch: {batches} batches per device, {steps} optimizer steps, on {where}",
        f"epochs: at most {tr.max_epochs}; optimiser {config.optim.name} lr {config.optim.lr:g}",
    ]
    if sched.name == "plateau":
        lines.append(
            f"schedule: plateau on val/top1, x{sched.plateau_factor:g} after {sched.plateau_patience} epochs "
            f"without improvement, checked every {sched.plateau_every_n_epochs} epoch(s)"
        )
    else:
        lines.append(f"schedule: {sched.name}, warm-up {sched.warmup_epochs:g} epoch(s)")
    lines.append(f"early stopping: {stop.rule}")
    return lines


def _output_lines(run_dir: Path, resume: bool, last: Path) -> list[str]:
    lines = [
        "",
        f"outputs: {run_dir}/ (config.yaml, checkpoints/last.ckpt + best.ckpt, logs/, metrics.json, "
        "model.safetensors + model.json, confusion_matrix.csv/png)",
    ]
    if last.is_file() and not resume:
        lines.append(f"note: {last} exists: the run needs --resume (or another --out)")
    lines.append("dry run: nothing was trained or written")
    return lines
