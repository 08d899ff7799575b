"""SLURM auto-requeue with checkpoints written between steps, so a requeued job resumes exactly.

With ``#SBATCH --signal=SIGUSR1@90`` SLURM sends SIGUSR1 before the time limit. Lightning's own handler writes
``hpc_ckpt_N.ckpt`` from inside the signal handler, i.e. wherever the training loop happens to be, possibly in
the middle of a step; resuming from there can lose or repeat a step. :class:`RequeueOnSignal` instead only notes
the signal and writes the checkpoint at the end of the current training step (or validation), the same moment
``last.ckpt`` is written, then runs ``scontrol requeue``. Training goes on until SLURM ends the job; the requeued
job reruns the same command and :func:`conv3t.train.run.train` continues from the newest ``hpc_ckpt_N.ckpt``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L

__all__ = ["RequeueOnSignal", "hpc_checkpoints", "slurm_job_id"]

log = logging.getLogger("conv3t.train")


def hpc_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The requeue checkpoints ``run_dir/hpc_ckpt_N.ckpt``, oldest (smallest N) first."""
    found = []
    for path in Path(run_dir).glob("hpc_ckpt_*.ckpt"):
        number = path.stem.removeprefix("hpc_ckpt_")
        if number.isdigit():
            found.append((int(number), path))
    return [path for _, path in sorted(found)]


def slurm_job_id() -> str | None:
    """``SLURM_JOB_ID``, or ``<array job>_<task>`` for an array job; None outside SLURM."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array is not None and "SLURM_ARRAY_TASK_ID" in os.environ:
        return f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


class RequeueOnSignal(L.Callback):
    """On ``signum``: write ``run_dir/hpc_ckpt_N.ckpt`` at the next step boundary and requeue the SLURM job.

    :meth:`install` sets the signal handler; it must run before ``trainer.fit`` (Lightning then leaves the
    signal to it). With several processes the ranks agree at every step whether any of them got the signal,
    so that they all save at the same step.
    """

    def __init__(self, run_dir: str | os.PathLike[str], signum: int = signal.SIGUSR1) -> None:
        self.run_dir, self.signum = Path(run_dir), signum
        self.received = False
        self._previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self.signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received = True  # only a note: the checkpoint waits for a consistent moment

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(self.signum, self._previous)
            self._previous = None

    def _requeue_if_signalled(self, trainer: L.Trainer) -> None:
        received = self.received
        if trainer.world_size > 1:
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        if not received:
            return
        self.received = False
        existing = hpc_checkpoints(self.run_dir)
        number = int(existing[-1].stem.removeprefix("hpc_ckpt_")) + 1 if existing else 1
        trainer.save_checkpoint(self.run_dir / f"hpc_ckpt_{number}.ckpt")
        job = slurm_job_id()
        if trainer.is_global_zero and job is not None:
            result = subprocess.call(["scontrol", "requeue", job])
            if result == 0:
                log.info("wrote hpc_ckpt_%d.ckpt and requeued SLURM job %s", number, job)
            else:
                log.warning("wrote hpc_ckpt_%d.ckpt; `scontrol requeue %s` failed (exit %d)", number, job, result)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._requeue_if_signalled(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._requeue_if_signalled(trainer)
