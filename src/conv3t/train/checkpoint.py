"""Checkpoint files: atomic writes, safe loading, and the RNG state that makes ``--resume`` exact.

* :class:`AtomicCheckpointIO` is a Lightning ``CheckpointIO`` plugin: every checkpoint is written to a
  temporary file in the same folder, flushed to disk and renamed over the target, so a run killed at any
  moment (SIGKILL included) leaves either the previous complete file or the new complete file. Loading uses
  ``torch.load(weights_only=True)`` (no arbitrary unpickling) and turns a truncated or corrupt file into a
  :class:`CheckpointError` that names the file.
* :class:`RNGStateCallback` stores the Python, NumPy and torch (CPU and CUDA) random states in every
  checkpoint and restores them on resume, so shuffling, augmentation and dropout continue the exact sequence
  of an uninterrupted run.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from conv3t.files import atomic_write

__all__ = ["AtomicCheckpointIO", "CheckpointError", "RNGStateCallback", "load_checkpoint_file"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a conv3t/Lightning checkpoint; the message names it."""


def load_checkpoint_file(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with errors that name the file and say what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise _corrupt(path, err) from err
        unsupported = next((ln.strip() for ln in str(err).splitlines() if "Unsupported global" in ln), "")
        raise CheckpointError(
            f"checkpoint {path} was refused: it holds Python objects that only arbitrary unpickling can rebuild "
            f"({unsupported or str(err).splitlines()[0]}). conv3t loads checkpoints with weights_only=True and "
            "never runs code from a file; conv3t's own checkpoints hold only tensors and plain values, so this "
            "file was written by other code. Load it yourself only if you trust its source."
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise _corrupt(path, err) from err
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise CheckpointError(f"checkpoint {path} is not a training checkpoint (no 'state_dict' entry)")
    return obj


def _corrupt(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt or truncated and cannot be loaded ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}). Delete it to start over, or resume from another "
        "checkpoint (best.ckpt) by copying it to last.ckpt."
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints through a temp file + rename; read them with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        atomic_write(path, buf.getvalue())

    def load_checkpoint(
        self, path: Any, map_location: Callable | Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location=map_location if map_location is not None else "cpu")

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


def _capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


class RNGStateCallback(L.Callback):
    """Save the random generators' state in checkpoints and restore it when a run resumes.

    The state is captured when the checkpoint is written (after validation, before the next epoch's data
    loader is created) and restored when Lightning restores the callbacks, which happens before the resumed
    epoch's data loader is created. Lightning's sanity check runs under ``isolate_rng`` and does not disturb
    it. With several processes (DDP) every rank other than 0 re-seeds itself at the start of training from its
    generator and its rank, so random draws in the training step (dropout) differ across ranks; the checkpoint
    holds rank 0's state, and the other ranks derive theirs from it the same way on resume. Data augmentation
    does not use these generators at all: :mod:`conv3t.data.loader` seeds every sample by
    ``(seed, epoch, index, rank)``.
    """

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _capture_rng()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "rng" in state_dict:
            _restore_rng(state_dict["rng"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size > 1 and trainer.global_rank > 0:
            seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) + 7919 * trainer.global_rank
            L.seed_everything(seed % (2**31 - 1), workers=True, verbose=False)
