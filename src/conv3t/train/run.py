"""One training run: config -> data module + model -> Lightning Trainer -> checkpoints, logs, export.

Run directory layout (``--out DIR``)::

    DIR/config.yaml                  the resolved config (file + command-line overrides + defaults)
    DIR/checkpoints/last.ckpt        latest state (model, optimizer, scheduler, loops, RNG); --resume reads it
    DIR/checkpoints/best.ckpt        best validation top-1 so far
    DIR/logs/version_N/metrics.csv   CSV log of every (re)start; DIR/tensorboard/version_N for TensorBoard
    DIR/metrics.json                 final validation metrics of the exported model, timings, paths
    DIR/confusion_matrix.csv|png     validation confusion matrix of the exported model
    DIR/model.safetensors|json       exported weights (best checkpoint) for `conv3t eval` / `conv3t explain`
    DIR/hpc_ckpt_N.ckpt              SLURM requeue checkpoint (Lightning, on SIGUSR1): the next start of the
                                     same command continues from it; deleted when the run finishes

Checkpoints are ordinary Lightning checkpoints holding only tensors and plain Python values, written
atomically and read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException

from conv3t.train.artifacts import export_model, model_info, write_confusion_matrix, write_json
from conv3t.train.checkpoint import AtomicCheckpointIO, CheckpointError, RNGStateCallback, load_checkpoint_file
from conv3t.train.compiling import apply_compile, compile_options
from conv3t.train.config import ConfigError, dump_config, validate_config
from conv3t.train.module import VideoClassifier, resolve_class_weights
from conv3t.train.requeue import RequeueOnSignal, hpc_checkpoints
from conv3t.train.schema import ExperimentConfig, LoggingConfig
from conv3t.train.stopping import build_stopping_callbacks, stop_record
from conv3t.train.trainer_options import build_strategy

__all__ = ["RunDirError", "TrainResult", "build_trainer", "checkpoint_paths", "hpc_checkpoints", "train"]

log = logging.getLogger("conv3t.train")

CHECKPOINT_DIR = "checkpoints"
LAST = "last"
BEST = "best"


class RunDirError(RuntimeError):
    """The run directory does not fit the request (a finished run without --resume, nothing to resume)."""


@dataclass
class TrainResult:
    """What a finished :func:`train` call produced."""

    run_dir: Path
    metrics: dict[str, float]
    train_seconds: float
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    exported: bool
    interrupted: bool = False
    is_global_zero: bool = True  # False in the other processes of a multi-process run: they print nothing
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_paths(run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(last.ckpt, best.ckpt)`` paths of a run directory (they may not exist)."""
    d = Path(run_dir) / CHECKPOINT_DIR
    return d / f"{LAST}.ckpt", d / f"{BEST}.ckpt"


def _loggers(cfg: LoggingConfig, run_dir: Path) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    out: list[Any] = []
    if cfg.tensorboard:
        if not tensorboard_available():
            raise ConfigError(
                "logging.tensorboard is true but the `tensorboard` package is not installed: "
                "pip install 'conv3t[tensorboard]', or set logging.tensorboard: false (CSV logs only)"
            )
        out.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", default_hp_metric=False))
    if cfg.csv or not out:
        out.append(CSVLogger(save_dir=str(run_dir), name="logs"))
    return out


def tensorboard_available() -> bool:
    """Whether Lightning's TensorBoardLogger can write (``tensorboard`` or ``tensorboardX`` installed)."""
    from lightning.fabric.loggers.tensorboard import _TENSORBOARD_AVAILABLE, _TENSORBOARDX_AVAILABLE

    return bool(_TENSORBOARD_AVAILABLE or _TENSORBOARDX_AVAILABLE)


def _progress_bar(kind: str) -> L.Callback | None:
    if kind == "rich":
        try:
            from lightning.pytorch.callbacks import RichProgressBar

            return RichProgressBar(leave=True)
        except (ImportError, ModuleNotFoundError):  # rich missing: fall back to tqdm
            kind = "tqdm"
    if kind == "tqdm":
        from lightning.pytorch.callbacks import TQDMProgressBar

        return TQDMProgressBar()
    return None


def build_trainer(
    config: ExperimentConfig, run_dir: Path, extra_callbacks: Sequence[L.Callback] = (), enable_logging: bool = True
) -> tuple[L.Trainer, dict[str, Any]]:
    """The Lightning Trainer for ``config`` and the checkpoint callbacks (``{"best": ..., "last": [...]}``)."""
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from conv3t.data import SkippedSamplesReport

    ckpt_dir = run_dir / CHECKPOINT_DIR
    ck = config.checkpoint
    callbacks: list[L.Callback] = [RNGStateCallback(), SkippedSamplesReport()]
    last_cbs = [
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename=LAST,
            monitor=None,
            save_top_k=1,
            every_n_epochs=ck.every_n_epochs,
            enable_version_counter=False,
        )
    ]
    if ck.every_n_train_steps:
        last_cbs.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename=LAST,
                monitor=None,
                save_top_k=1,
                every_n_train_steps=ck.every_n_train_steps,
                enable_version_counter=False,
            )
        )
    callbacks += last_cbs
    best_cb = None
    if ck.save_best:
        best_cb = ModelCheckpoint(
            dirpath=ckpt_dir,
            filename=BEST,
            monitor="val/top1",
            mode="max",
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        )
        callbacks.append(best_cb)
    bar = _progress_bar(config.logging.progress_bar)
    if bar is not None:
        callbacks.append(bar)
    loggers = _loggers(config.logging, run_dir) if enable_logging else []
    if loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    callbacks += build_stopping_callbacks(config.early_stop)
    callbacks += list(extra_callbacks)
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():  # requeue checkpoints between steps, instead of Lightning's mid-step ones
        requeue = RequeueOnSignal(run_dir)
        requeue.install()
        callbacks.append(requeue)
    kwargs = config.trainer.arguments()
    kwargs["strategy"] = build_strategy(config.trainer.strategy)
    user_plugins = kwargs.pop("plugins", None) or []
    plugins = [AtomicCheckpointIO(), *(user_plugins if isinstance(user_plugins, list) else [user_plugins])]
    try:
        trainer = L.Trainer(
            default_root_dir=str(run_dir),
            logger=loggers if loggers else False,
            callbacks=callbacks,
            plugins=plugins,
            enable_progress_bar=bar is not None,
            **kwargs,
        )
    except MisconfigurationException as err:  # e.g. an unknown accelerator or profiler name
        raise ConfigError(f"trainer: {err}") from err
    return trainer, {"best": best_cb, "last": last_cbs}


def _resume_point(run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to continue from: the newest of last.ckpt (with ``resume``) and a SLURM requeue
    checkpoint (always: a requeued job reruns the same command, without --resume); None to start afresh."""
    last, _ = checkpoint_paths(run_dir)
    hpc = hpc_checkpoints(run_dir)
    candidates = ([last] if resume and last.is_file() else []) + hpc[-1:]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, p in hpc))  # same time: the requeue one


def _prepare_run_dir(run_dir: Path, resume: bool, config: ExperimentConfig) -> Path | None:
    last, _ = checkpoint_paths(run_dir)
    start = _resume_point(run_dir, resume)
    if resume and start is None:
        raise RunDirError(f"--resume: {last} not found; nothing to resume in {run_dir}")
    if start is not None:
        if start != last:
            log.info("continuing from the SLURM requeue checkpoint %s", start)
        load_checkpoint_file(start)  # fail early, naming the file, if it is corrupt
        _warn_if_changed(run_dir / "config.yaml", config)
        return start
    if last.is_file():
        raise RunDirError(
            f"{run_dir} already holds a run ({last}); pass --resume to continue it, or choose another --out"
        )
    return None


def _warn_if_changed(saved: Path, config: ExperimentConfig) -> None:
    """Log the keys in which ``config`` differs from the run's ``config.yaml`` (both with defaults filled in,
    so a file written before a key existed differs only where a value does)."""
    if not saved.is_file():
        return
    import yaml

    old = yaml.safe_load(saved.read_text()) or {}
    with contextlib.suppress(ConfigError):  # a file that no longer validates is compared as written
        old = validate_config(old, source=str(saved), check_data=False).to_dict()
    changed = _diff(old, config.to_dict())
    if changed:
        log.warning("resuming with a config that differs from %s in: %s", saved, ", ".join(changed))


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _cache_clips(config: ExperimentConfig, dm: Any, progress: Callable[[int, int, str], None] | None) -> None:
    from conv3t.train.cache import cache_dataset

    dm.setup("fit")
    cache = config.cache
    flip_map = dict(getattr(dm.train_set, "flip_label_map", {}) or {}) if cache.flip else None
    reverse_map = None
    if cache.reverse:
        reverse_map = dm.source.reverse_label_map()
        if reverse_map is None:
            raise ValueError(f"cache.reverse: time reversal is not label-safe for dataset {dm.dataset!r}")
    workers = config.data.num_workers or min(2, os.cpu_count() or 1)
    dm.train_set = cache_dataset(
        dm.train_set,
        workers,
        progress=progress,
        description="train clips",
        flip_map=flip_map,
        reverse_map=reverse_map,
    )
    dm.val_set = cache_dataset(dm.val_set, workers, progress=progress, description="validation clips")
    dm.num_workers, dm.persistent_workers = 0, False  # tensors in memory: no worker processes needed


def _build(
    config: ExperimentConfig, cache_progress: Callable[[int, int, str], None] | None
) -> tuple[Any, VideoClassifier]:
    """The data module and the LightningModule of ``config``; settings that cannot be built -> ConfigError."""
    from conv3t.data import build_datamodule

    try:  # errors here come from the data / model settings; later ones are not re-worded
        dm = build_datamodule(config.data.as_mapping())
        classes = dm.classes
        weights = resolve_class_weights(config.loss.class_weights, dm)
        module = VideoClassifier(config, num_classes=len(classes), classes=classes, class_weights=weights)
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError(f"cannot build the run from its data / model settings: {type(err).__name__}: {err}") from err
    dm.sample_seed = config.seed
    apply_compile(module.model, compile_options(config.model.compile))  # in place: same state dict
    if config.cache.clips:
        _cache_clips(config, dm, cache_progress)
    return dm, module


def _use_best_weights(trainer: L.Trainer, module: VideoClassifier, dm: Any, best_cb: Any) -> Path | None:
    """Load best.ckpt's weights into ``module`` (re-validating them) unless they are the final ones."""
    best_file = Path(best_cb.best_model_path) if best_cb is not None and best_cb.best_model_path else None
    if best_file is not None and best_file.is_file():
        # ModelCheckpoint keeps the first of equal scores, so best.ckpt may be older than equally good final
        # weights: export what best.ckpt holds, always, so that the export and the checkpoint agree.
        best = load_checkpoint_file(best_file)
        if int(best.get("global_step", -1)) != int(trainer.global_step) or not module.last_val_metrics:
            module.load_state_dict(best["state_dict"])
            trainer.validate(module, datamodule=dm, verbose=False)
    elif not module.last_val_metrics:
        trainer.validate(module, datamodule=dm, verbose=False)
    return best_file


def _write_outputs(
    config: ExperimentConfig, run_dir: Path, trainer: L.Trainer, module: VideoClassifier, dm: Any, **record: Any
) -> None:
    """Rank 0's files: confusion matrix, exported weights, metrics.json (``record`` adds to it)."""
    from conv3t.data import SkippedSamplesReport

    if module.last_confusion is not None:
        write_confusion_matrix(module.last_confusion, dm.classes, run_dir, title=config.model.name)
    export_model(module.model, run_dir, model_info(config, dm.classes, dm.num_frames, dm.size))
    skips = next(cb for cb in trainer.callbacks if isinstance(cb, SkippedSamplesReport))
    summary = {
        "model": config.model.name,
        "metrics": dict(module.last_val_metrics),
        "epochs_completed": int(trainer.current_epoch),
        "global_step": int(trainer.global_step),
        **record,
        "early_stop": stop_record(config.early_stop.rule, trainer.callbacks),
        "lr_history": list(module.lr_history),  # this process's epochs (since the last resume)
        "val_history": list(module.val_history),
        "class_weights": module.class_weights.tolist() if module.class_weights is not None else None,
        "skipped_samples": dict(skips.totals),  # whole run, all processes, resumed parts included
        "skipped_per_epoch": [{"epoch": e, "split": s, "count": n} for e, s, n in skips.history],
        "device": str(module.device),
        "torch_threads": torch.get_num_threads(),
    }
    write_json(summary, run_dir / "metrics.json")
    for path in hpc_checkpoints(run_dir):  # superseded by last.ckpt; a rerun must not go back to them
        path.unlink(missing_ok=True)


def train(
    config: ExperimentConfig | Mapping[str, Any],
    run_dir: str | os.PathLike[str],
    resume: bool = False,
    *,
    cache_progress: Callable[[int, int, str], None] | None = None,
    extra_callbacks: Sequence[L.Callback] = (),
) -> TrainResult:
    """Train the model described by the validated ``config``; outputs go to ``run_dir``.

    Args:
        config: the experiment (:func:`conv3t.train.config.load_config`); a plain mapping is validated first.
        run_dir: output folder; created once the config is valid and the data module, model and trainer are
            built, so a config that cannot run leaves no folder behind.
        resume: continue from ``run_dir/checkpoints/last.ckpt`` (epoch, step, optimizer, scheduler, RNG, loader
            position), or from a newer SLURM requeue checkpoint ``run_dir/hpc_ckpt_N.ckpt``, which is also used
            without ``resume``.
        cache_progress: ``(done, total, description)`` callback while caching.
        extra_callbacks: more Lightning callbacks.

    Raises:
        RunDirError: ``run_dir`` has a run but ``resume`` is False, or ``resume`` without a checkpoint.
        CheckpointError: the checkpoint to resume from is corrupt (the message names the file).
        ConfigError: the config is invalid, or its data / model / trainer settings cannot be built.
    """
    config = validate_config(config, source="conv3t.train.run.train")
    run_dir = Path(run_dir)
    ckpt = _prepare_run_dir(run_dir, resume, config)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # inside Lightning, not actionable here
    L.seed_everything(config.seed, workers=True, verbose=False)
    dm, module = _build(config, cache_progress)
    trainer, ck = build_trainer(config, run_dir, extra_callbacks)
    run_dir.mkdir(parents=True, exist_ok=True)  # the first write: everything above is built and checked
    zero = bool(trainer.is_global_zero)
    if zero:
        dump_config(config, run_dir / "config.yaml")

    start = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    train_seconds = time.perf_counter() - start
    last_path, _ = checkpoint_paths(run_dir)
    if trainer.interrupted:
        return TrainResult(run_dir, dict(module.last_val_metrics), train_seconds, None, last_path, False, True, zero)

    best_file = _use_best_weights(trainer, module, dm, ck["best"])
    if zero:
        _write_outputs(
            config,
            run_dir,
            trainer,
            module,
            dm,
            train_seconds=train_seconds,
            best_checkpoint=str(best_file) if best_file else None,
            last_checkpoint=str(last_path) if last_path.is_file() else None,
            resumed_from=str(ckpt) if ckpt else None,
        )
    return TrainResult(
        run_dir=run_dir,
        metrics=dict(module.last_val_metrics),
        train_seconds=train_seconds,
        best_checkpoint=best_file,
        last_checkpoint=last_path if last_path.is_file() else None,
        exported=zero,
        is_global_zero=zero,
    )


__all__ += ["CheckpointError"]
