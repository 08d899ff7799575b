"""Host-device synchronisation in a training step stays at zero (issue 20).

On a GPU an operation whose result the host must read (``.item()``, ``bool(tensor)``, ``nonzero``, ...) waits
for every queued kernel, so one of them per layer would serialise the step. A ``TorchDispatchMode`` sees
every operation the step runs, on the CPU too, so the count is checked here without a device:

* a training step (forward, cross-entropy, backward, SGD-momentum step) of ``resnet18_3t``, ``googlenet_3t``
  and the demo's ``resnet10_3t`` (base width 16), at the identity start and with random temporal parameters;
* ``VideoClassifier`` trained by Lightning: conv3t's code adds none; Lightning itself reads the
  ``prog_bar=True`` step metric (``train/loss``) as a Python number after every step (its ``metrics``
  property: 1 sync per step, with or without a progress bar; a progress bar reads it once more), and at the
  ``log_every_n_steps`` interval 2 more (``train/loss`` again, ``train/loss_step`` for ``log_metrics``).
* with CUDA, one step of the demo model under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import traceback
from collections import Counter
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, TensorDataset
from train_helpers import tiny_synthetic

from conv3t.models import create_model
from conv3t.nn import randomize_temporal_parameters
from conv3t.train.config import validate_config
from conv3t.train.module import VideoClassifier

#: operations whose result the host reads: each waits for the device
SYNC_OPS = frozenset({"_local_scalar_dense", "item", "is_nonzero", "nonzero", "equal", "allclose"})

MODELS = {
    "resnet18_3t": {},
    "googlenet_3t": {},
    "resnet10_3t": {"base_width": 16, "stem_temporal_stride": 1},  # the demo model (configs/demo.yaml)
}


class SyncCounter(TorchDispatchMode):
    """Counts the synchronising operations run under it, by the innermost frame outside torch."""

    def __init__(self) -> None:
        super().__init__()
        self.origins: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.overloadpacket.__name__ in SYNC_OPS:
            frames = [f for f in traceback.extract_stack()[:-1] if "/torch/" not in f.filename.replace("\\", "/")]
            where = frames[-1] if frames else None
            self.origins[f"{where.filename}:{where.name}" if where else "torch"] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.origins.values())


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _model(name: str, random_temporal: bool) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=9, **MODELS[name])
    if random_temporal:
        randomize_temporal_parameters(model, 0.3, generator=torch.Generator().manual_seed(1), scale_bound=0.2)
    return model.train()


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(_logits(model(x)), y).backward()
    optimizer.step()


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t.sum().item(),
        lambda t: bool(t.sum() > 0),
        lambda t: torch.nonzero(t),
        lambda t: torch.equal(t, t),
        lambda t: float(t.max()),
    ],
    ids=["item", "bool", "nonzero", "equal", "float"],
)
def test_counter_sees_each_kind_of_sync(op):
    """The watcher itself: without this, a count of zero could mean it sees nothing."""
    with SyncCounter() as counter:
        op(torch.randn(3, 4))
    assert counter.total >= 1


@pytest.mark.parametrize("random_temporal", [False, True], ids=["identity", "random"])
@pytest.mark.parametrize("name", list(MODELS))
def test_training_step_has_no_sync(name, random_temporal):
    model = _model(name, random_temporal)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(2, 3, 8, 32, 32), torch.tensor([1, 4])
    _step(model, optimizer, x, y)  # the first step creates the momentum buffers and cached constants
    with SyncCounter() as counter:
        _step(model, optimizer, x, y)
    assert counter.origins == {}, f"{name}: operations that wait for the device: {dict(counter.origins)}"


class _PerStep(L.Callback):
    """One sync counter over the whole fit; its count starts afresh at each training batch.

    Lightning reads its step metrics after ``on_train_batch_end``, so a step runs to the next batch's start.
    """

    def __init__(self) -> None:
        self.counter = SyncCounter()
        self.steps: list[Counter[str]] = []

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.counter.__enter__()

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        self.counter.origins = Counter()
        self.steps.append(self.counter.origins)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.counter.__exit__(None, None, None)


def test_lightning_training_step_syncs_are_lightnings_own(tmp_path):
    """conv3t's ``training_step`` (forward, loss, torchmetrics update, self.log) and the step add no sync."""
    cfg = tiny_synthetic(
        model={"name": "resnet10_3t", "kwargs": {"base_width": 16, "stem_temporal_stride": 1}, "temporal_init": 0.3},
        optim={"name": "sgd", "lr": 0.01},
    )
    module = VideoClassifier(validate_config(cfg), num_classes=9)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(12, 3, 8, 32, 32), torch.randint(0, 9, (12,)))
    per_step = _PerStep()
    trainer = L.Trainer(
        max_steps=6,
        log_every_n_steps=3,
        accelerator="cpu",
        devices=1,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[per_step],
    )
    trainer.fit(module, DataLoader(data, batch_size=2))
    assert len(per_step.steps) == 6
    for i, origins in enumerate(per_step.steps[:-1]):  # the last one runs on into the end of the fit
        ours = {k: n for k, n in origins.items() if "lightning" not in k}
        assert ours == {}, f"step {i}: syncs outside Lightning: {ours}"
        # Lightning's (all .item() in its to_item): the prog_bar metric train/loss read once per step; at the
        # log interval it is read again and the logged metric train/loss_step converted for the logger
        assert all(k.endswith(":to_item") for k in origins), dict(origins)
        assert sum(origins.values()) == (3 if (i + 1) % 3 == 0 else 1), f"step {i}: {dict(origins)}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_step_under_sync_debug_mode_error():
    """Any synchronising call (also host-device copies of pageable memory) raises in this mode."""
    device = torch.device("cuda")
    for name in ("resnet10_3t", "resnet18_3t"):
        model = _model(name, random_temporal=True).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(2, 3, 8, 32, 32, device=device)
        y = torch.tensor([1, 4], device=device)
        _step(model, optimizer, x, y)  # builds the per-device constants (one copy from the host each)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            _step(model, optimizer, x, y)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
