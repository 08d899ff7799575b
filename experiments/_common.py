"""Shared pieces of the small-scale reproduction experiments (not part of the library).

Everything runs on the CPU with tiny settings: synthetic clips of 8 frames x 32 x 32 pixels, the reduced
ResNet-10 (one block per stage) at base width 8, a plain PyTorch training loop (Adam, cosine schedule,
mirror / time-reversal augmentation with label maps). The temporal parameters get their own learning rate,
as in ``configs/demo.yaml``. Each finished run is stored as JSON under ``runs/experiments/results`` and
reused by every experiment that needs the same run (same key), so the three experiments share their
scratch-3T runs.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.data.synthetic import SYNTHETIC_FLIP_LABEL_MAP, SyntheticMotionDataset
from conv3t.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from conv3t.exported import ModelInfo, save_exported
from conv3t.files import atomic_write
from conv3t.models import count_parameters, create_model
from conv3t.nn import Conv3T
from conv3t.train.cache import reverse_label_map

ROOT = Path(os.environ.get("CONV3T_EXPERIMENTS", "runs/experiments"))
TEMPORAL = ("scale", "rotation", "translation_x", "translation_y")


@dataclass(frozen=True)
class Setting:
    """One training run. ``pretrained``: None (scratch) or ``"frames2d"`` (2D net trained on single frames of
    the appearance task, transferred with ``create_model(pretrained=PATH)``)."""

    task: str = "motion"
    model: str = "resnet10_3t"
    pretrained: str | None = None
    seed: int = 0
    base_width: int = 8
    num_frames: int = 8
    size: int = 32
    num_train: int = 1800
    num_val: int = 450
    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    temporal_lr: float = 3e-2
    weight_decay: float = 1e-4

    def key(self) -> str:
        pre = self.pretrained or "scratch"
        tlr = "" if self.temporal_lr == 3e-2 else f"_tlr{self.temporal_lr:g}"
        return f"{self.task}_{self.model}_{pre}_w{self.base_width}_e{self.epochs}_n{self.num_train}{tlr}_s{self.seed}"


def clips(task: str, split: str, count: int, num_frames: int, size: int) -> tuple[Tensor, Tensor]:
    """Rendered, normalised clips ``(N, 3, T, H, W)`` and labels, cached on disk (train seed 0, val seed 1)."""
    path = ROOT / "cache" / f"{task}_{split}_{count}_{num_frames}x{size}.pt"
    if path.is_file():
        data = torch.load(path, weights_only=True)
        return data["x"], data["y"]
    ds = SyntheticMotionDataset(count, num_frames=num_frames, size=size, task=task, seed=0 if split == "train" else 1)
    x = torch.stack([ds[i][0] for i in range(count)])
    y = torch.tensor([ds.label(i) for i in range(count)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"x": x, "y": y}, tmp)
    os.replace(tmp, path)
    return x, y


def classes(task: str) -> list[str]:
    return SyntheticMotionDataset(1, num_frames=2, size=16, task=task).classes


def _maps(task: str) -> tuple[Tensor, Tensor]:
    names = classes(task)
    flip, rev = torch.arange(len(names)), torch.arange(len(names))
    for k, v in SYNTHETIC_FLIP_LABEL_MAP[task].items():
        flip[k] = v
    for k, v in reverse_label_map(names, task).items():
        rev[k] = v
    return flip, rev


def _augment(x: Tensor, y: Tensor, flip: Tensor, rev: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
    do_flip = torch.rand(len(y), generator=g) < 0.5
    do_rev = torch.rand(len(y), generator=g) < 0.5
    x = x.clone()
    x[do_flip] = x[do_flip].flip(-1)
    y = torch.where(do_flip, flip[y], y)
    x[do_rev] = x[do_rev].flip(2)
    y = torch.where(do_rev, rev[y], y)
    return x, y


def _groups(model: nn.Module, lr: float, temporal_lr: float, weight_decay: float) -> list[dict[str, Any]]:
    temporal_ids = {id(getattr(m, a)) for m in model.modules() if isinstance(m, Conv3T) for a in TEMPORAL}
    temporal = [p for p in model.parameters() if id(p) in temporal_ids and p.requires_grad]
    decay = [p for p in model.parameters() if id(p) not in temporal_ids and p.requires_grad and p.dim() > 1]
    other = [p for p in model.parameters() if id(p) not in temporal_ids and p.requires_grad and p.dim() <= 1]
    groups = [
        {"params": decay, "lr": lr, "weight_decay": weight_decay},
        {"params": other, "lr": lr, "weight_decay": 0.0},
        {"params": temporal, "lr": temporal_lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch: int = 64) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        correct += int((model(x[i : i + batch]).argmax(dim=1) == y[i : i + batch]).sum())
    return correct / len(y)


def fit(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    xv: Tensor,
    yv: Tensor,
    setting: Setting,
    task: str,
    augment: bool = True,
) -> dict[str, Any]:
    """Train ``model`` (Adam, cosine schedule, ``setting.epochs``), return final val accuracy and timing."""
    torch.manual_seed(setting.seed)
    g = torch.Generator().manual_seed(setting.seed)
    opt = torch.optim.AdamW(_groups(model, setting.lr, setting.temporal_lr, setting.weight_decay))
    steps_per_epoch = math.ceil(len(y) / setting.batch_size)
    total = setting.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    flip, rev = _maps(task)
    start = time.perf_counter()
    history = []
    for _ in range(setting.epochs):
        model.train()
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), setting.batch_size):
            idx = order[i : i + setting.batch_size]
            xb, yb = x[idx], y[idx]
            if augment:
                xb, yb = _augment(xb, yb, flip, rev, g)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        history.append(accuracy(model, xv, yv))
    return {"val_acc": history[-1], "val_history": history, "train_seconds": time.perf_counter() - start}


def spread(model: nn.Module) -> dict[str, float]:
    """Mean and std over all Conv3T channels and steps of |s-1|, |r|, |t_x|, |t_y| (the paper's Tables 2/4)."""
    from conv3t.explain import summary_statistics

    stats = summary_statistics({"m": model})
    out = {}
    for row in stats.itertuples(index=False):
        out[f"mu_{row.parameter}"] = row.mean
        out[f"sigma_{row.parameter}"] = row.std
    return out


def pretrained_2d(seed: int, setting: Setting) -> Path:
    """A 2D network trained on single frames of the appearance task, saved as a torchvision-style state dict.

    Built as the 3T ResNet itself fed one-frame clips with its temporal parameters frozen at the identity: then
    every 3T layer computes exactly the 2D convolution with its filter ``K_1`` (only the kernel's centre slice
    meets the frame), BatchNorm3d over one frame is BatchNorm2d, and the 1x1x1 shortcut convolutions are 1x1.
    The saved dict has torchvision's 2D shapes (``(out, in, kH, kW)``), so it goes through the library's
    2D -> 3T transfer (:func:`conv3t.models.create_model` with ``pretrained=PATH``) like any 2D checkpoint.
    """
    path = ROOT / "pretrained" / f"frames2d_w{setting.base_width}_e{setting.epochs}_s{seed}.safetensors"
    if path.is_file():
        return path
    x, y = clips("appearance", "train", setting.num_train, setting.num_frames, setting.size)
    xv, yv = clips("appearance", "val", setting.num_val, setting.num_frames, setting.size)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, setting.num_frames, (len(y),), generator=g)
    frames = x[torch.arange(len(y)), :, pick].unsqueeze(2)  # (N, 3, 1, H, W): one random frame per clip
    frames_v = xv[:, :, setting.num_frames // 2].unsqueeze(2)
    torch.manual_seed(seed)
    model = create_model(
        "resnet10_3t", num_classes=len(classes("appearance")), base_width=setting.base_width, stem_temporal_stride=1
    )
    for m in model.modules():
        if isinstance(m, Conv3T):
            for a in TEMPORAL:
                getattr(m, a).requires_grad_(False)
    pre = Setting(**{**asdict(setting), "seed": seed})
    result = fit(model, frames, y, frames_v, yv, pre, "appearance", augment=True)
    state = {}
    for k, v in model.state_dict().items():
        if any(k.endswith(f".{a}") for a in TEMPORAL):
            continue
        if v.dim() == 5:  # Conv3d 1x1x1 shortcut -> 2D 1x1
            v = v[:, :, 0]
        state[k] = v.contiguous()
    from safetensors.torch import save

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save(state))
    atomic_write(path.with_suffix(".json"), (json.dumps(result, indent=1) + "\n").encode())
    return path


def run(setting: Setting, export: bool = True) -> dict[str, Any]:
    """Train one setting (or load its stored result) and return accuracy, parameter count and spread.

    With ``export`` the trained model is also written as ``ROOT/models/<key>`` (model.safetensors +
    model.json), ready for ``conv3t explain`` / ``conv3t verify``.
    """
    out = ROOT / "results" / f"{setting.key()}.json"
    if out.is_file():
        return json.loads(out.read_text())
    x, y = clips(setting.task, "train", setting.num_train, setting.num_frames, setting.size)
    xv, yv = clips(setting.task, "val", setting.num_val, setting.num_frames, setting.size)
    torch.manual_seed(setting.seed)
    kwargs = {"base_width": setting.base_width, "stem_temporal_stride": 1}
    pretrained = None
    if setting.pretrained == "frames2d":
        pretrained = str(pretrained_2d(setting.seed, setting))
    elif setting.pretrained is not None:
        raise ValueError(f"unknown pretrained={setting.pretrained!r}")
    model = create_model(setting.model, num_classes=len(classes(setting.task)), pretrained=pretrained, **kwargs)
    result: dict[str, Any] = {"setting": asdict(setting), "params": count_parameters(model)}
    if pretrained is not None:
        result["acc_at_transfer"] = accuracy(model, xv, yv)
    result.update(fit(model, x, y, xv, yv, setting, setting.task))
    if setting.model.endswith("_3t"):
        result.update(spread(model))
    if export:
        info = ModelInfo(
            model=setting.model,
            num_classes=len(classes(setting.task)),
            classes=classes(setting.task),
            num_frames=setting.num_frames,
            size=(setting.size, setting.size),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            model_kwargs=kwargs,
            data={"dataset": "synthetic", "task": setting.task, "num_frames": setting.num_frames},
        )
        save_exported(model, ROOT / "models" / setting.key(), info)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, (json.dumps(result, indent=1) + "\n").encode())
    return result


def mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def fmt(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    m, s = mean_std([v / scale for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"
