"""Shared pieces of the small-scale reproduction experiments (not part of the library).

Every measured model is trained by the shipped trainer, :func:`conv3t.train.run.train`, from
``configs/experiments/small_synthetic.yaml`` plus dotted overrides (:meth:`Setting.overrides`). Each run gets
its own trainer run folder ``ROOT/runs/<name>-<key>``; ``<key>`` hashes the fully validated config, the
package's source code, the library versions and (for pretrained runs) the bytes of the 2D weights file, so
a stored result is reused only when nothing that changes it has changed (:func:`run_key`). ``result.json``
in the folder is written last: a folder without it is an unfinished run and is trained again.

The one piece outside the trainer is the stand-in for ImageNet pretraining (:func:`pretrained_2d`): a 2D
network trained on single frames, which the trainer (a video trainer) cannot express. It uses the trainer's
own parameter groups (:func:`conv3t.train.optim.build_optimizer`) and schedule (:func:`lr_multiplier`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import conv3t
from conv3t.files import atomic_write, write_json
from conv3t.nn import Conv3T, conv3t_layers

if TYPE_CHECKING:
    from conv3t.train.schema import ExperimentConfig

ROOT = Path(os.environ.get("CONV3T_EXPERIMENTS", "runs/experiments"))
BASE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "experiments" / "small_synthetic.yaml"
PARAMS = ("s", "r", "t_x", "t_y")


@dataclass(frozen=True)
class Setting:
    """One training run. ``pretrained``: None (scratch) or ``"frames2d"`` (:func:`pretrained_2d` of this seed,
    transferred by the trainer's ``model.pretrained`` with ``model.inflate = inflate``)."""

    task: str = "motion"
    model: str = "resnet10_3t"
    pretrained: str | None = None
    inflate: str = "repeat"
    seed: int = 0
    temporal_lr: float = 3e-2

    def overrides(self) -> dict[str, Any]:
        """Dotted config overrides on top of :data:`BASE_CONFIG` (the 2D weights path is filled in later)."""
        return {
            "seed": self.seed,
            "data.task": self.task,
            "model.name": self.model,
            "model.inflate": self.inflate,
            "optim.temporal_lr": self.temporal_lr,
        }

    def name(self) -> str:
        """Readable part of the run folder name (the key part makes it unique)."""
        pre = "scratch" if self.pretrained is None else f"{self.pretrained}-{self.inflate}"
        return f"{self.task}_{self.model}_{pre}_tlr{self.temporal_lr:g}_s{self.seed}"


@cache
def code_version() -> str:
    """sha256 of every ``.py`` file of the imported conv3t package and of this file, plus library versions."""
    h = hashlib.sha256()
    package = Path(conv3t.__file__).resolve().parent
    files = [(str(p.relative_to(package.parent)), p) for p in sorted(package.rglob("*.py"))]
    for name, path in [*files, ("experiments/_common.py", Path(__file__).resolve())]:
        h.update(f"{name}\0".encode() + path.read_bytes() + b"\0")
    import lightning

    for mod in (conv3t, torch, lightning, np):
        h.update(f"{mod.__name__}={mod.__version__};".encode())
    return h.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_key(config: ExperimentConfig, code: str | None = None) -> str:
    """Cache key of a run: hash of the validated ``config``, the code version and any weights file it reads.

    Every setting that can change a result is in the validated config (defaults filled in) or in the code,
    so a changed setting or changed code gives another key and the run is trained again.
    """
    pretrained = config.model.pretrained
    weights = file_digest(pretrained) if pretrained not in (None, "imagenet") else pretrained
    blob = json.dumps(
        {"config": config.to_dict(), "code": code if code is not None else code_version(), "weights": weights},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def base_config(overrides: Mapping[str, Any]) -> ExperimentConfig:
    """The validated experiment config: :data:`BASE_CONFIG` plus ``overrides``."""
    from conv3t.train.config import load_config

    return load_config(BASE_CONFIG, overrides)


def spread(model: nn.Module) -> dict[str, float]:
    """Mean and std (ddof 0) over all Conv3T channels and steps of |s-1|, |r|, |t_x|, |t_y| (Tables 2/4)."""
    values: dict[str, list[Tensor]] = {p: [] for p in PARAMS}
    for _, layer in conv3t_layers(model):
        t = {k: v.detach().double().flatten() for k, v in layer.temporal_parameters().items()}
        values["s"].append((t["scale"] - 1).abs())
        values["r"].append(t["rotation"].abs())
        values["t_x"].append(t["translation_x"].abs())
        values["t_y"].append(t["translation_y"].abs())
    out = {}
    for p, parts in values.items():
        v = torch.cat(parts)
        out[f"mu_{p}"], out[f"sigma_{p}"] = float(v.mean()), float(v.std(unbiased=False))
    return out


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch: int = 64) -> float:
    """Eval-mode top-1 of ``model`` on clips ``x`` ``(N, 3, T, H, W)`` with labels ``y`` ``(N,)``."""
    model.eval()
    correct = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(y), batch))
    return correct / len(y)


def clips(config: ExperimentConfig, split: str) -> tuple[Tensor, Tensor]:
    """The rendered, normalised clips ``(N, 3, T, H, W)`` and labels of ``split`` exactly as the trainer's data
    module builds them (``train`` without its random flip)."""
    from conv3t.data import build_datamodule

    dm = build_datamodule({**config.data.as_mapping(), "flip": None})
    ds = dm.make_dataset(split)
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([c for c, _ in items]), torch.tensor([int(label) for _, label in items])


def history(run_dir: Path) -> list[float]:
    """Validation top-1 after every epoch, from the trainer's CSV log."""
    out = []
    for path in sorted((run_dir / "logs").glob("version_*/metrics.csv")):
        with path.open() as f:
            out += [float(row["val/top1"]) for row in csv.DictReader(f) if row.get("val/top1")]
    return out


def pretrained_2d(seed: int) -> Path:
    """A 2D ResNet-10 trained on single frames of the appearance task, saved as a torchvision-style state dict.

    Built as the 3T ResNet fed one-frame clips with its temporal parameters frozen at the identity: then every
    3T layer computes exactly the 2D convolution with its filter ``K_1`` (only the kernel's centre slice meets
    the frame), BatchNorm3d over one frame is BatchNorm2d, and the 1x1x1 shortcuts are 1x1 convolutions. The
    saved dict has torchvision's 2D shapes, so the trainer's ``model.pretrained`` loads it like any 2D file.
    Same data, optimiser groups, schedule, batch size and epochs as the video runs.
    """
    from conv3t.data.synthetic import SYNTHETIC_FLIP_LABEL_MAP
    from conv3t.models import create_model
    from conv3t.train.optim import build_optimizer, lr_multiplier

    cfg = base_config({"seed": seed, "data.task": "appearance"})
    key = run_key(cfg)
    path = ROOT / "pretrained" / f"frames2d_s{seed}-{key}.safetensors"
    if path.is_file():
        return path
    x, y = clips(cfg, "train")
    xv, yv = clips(cfg, "val")
    frames_count = x.shape[2]
    g = torch.Generator().manual_seed(seed)
    frames = x[torch.arange(len(y)), :, torch.randint(0, frames_count, (len(y),), generator=g)].unsqueeze(2)
    frames_v = xv[:, :, frames_count // 2].unsqueeze(2)  # (N, 3, 1, H, W): the middle frame
    torch.manual_seed(seed)
    model = create_model("resnet10_3t", int(y.max()) + 1, **cfg.model.kwargs)
    for _, layer in conv3t_layers(model):
        for p in layer.temporal_parameters().values():
            p.requires_grad_(False)
    opt = build_optimizer(model, cfg.optim)
    bs, epochs = cfg.data.batch_size, cfg.trainer.max_epochs
    total = epochs * math.ceil(len(y) / bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_multiplier(s, total, 0, "cosine", 0.0))
    flip = torch.arange(int(y.max()) + 1)
    for k, v in SYNTHETIC_FLIP_LABEL_MAP["appearance"].items():
        flip[k] = v
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=g).split(bs):
            xb, yb = frames[idx].clone(), y[idx]
            mirror = torch.rand(len(yb), generator=g) < 0.5
            xb[mirror], yb = xb[mirror].flip(-1), torch.where(mirror, flip[yb], yb)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    state = {}
    for k, v in model.state_dict().items():
        if k.rsplit(".", 1)[-1] in Conv3T.temporal_parameter_names:
            continue
        state[k] = (v[:, :, 0] if v.dim() == 5 else v).contiguous()  # 1x1x1 shortcut -> 1x1
    from safetensors.torch import save

    atomic_write(path, save(state))
    write_json({"val_acc_single_frame": accuracy(model, frames_v, yv), "key": key}, path.with_suffix(".json"))
    return path


def config_of(setting: Setting) -> ExperimentConfig:
    """The validated trainer config of ``setting`` (pretraining the 2D weights first when it needs them)."""
    over = setting.overrides()
    if setting.pretrained == "frames2d":
        over["model.pretrained"] = str(pretrained_2d(setting.seed))
    elif setting.pretrained is not None:
        raise ValueError(f"unknown pretrained={setting.pretrained!r}")
    return base_config(over)


def _acc_at_transfer(config: ExperimentConfig, xv: Tensor, yv: Tensor) -> dict[str, float]:
    """Eval-mode val top-1 straight after the 2D -> video transfer, for both inflate modes."""
    from conv3t.train.module import build_model

    out = {}
    for mode in ("repeat", "mean"):
        torch.manual_seed(0)
        model = build_model(dataclasses.replace(config.model, inflate=mode), int(yv.max()) + 1)
        out[mode] = accuracy(model, xv, yv)
    return out


def run(setting: Setting) -> dict[str, Any]:
    """Train ``setting`` with the shipped trainer (or reuse its stored result); accuracy, params, spread.

    The run folder holds the trainer's outputs (config.yaml, logs, metrics.json, model.safetensors + model.json
    for ``conv3t explain`` / ``conv3t verify``) and ``result.json``.
    """
    from conv3t.exported import load_exported
    from conv3t.models import count_parameters
    from conv3t.train.run import train

    config = config_of(setting)
    run_dir = ROOT / "runs" / f"{setting.name()}-{run_key(config)}"
    done = run_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    if run_dir.exists():  # an unfinished run (killed): start it again from scratch
        shutil.rmtree(run_dir)
    result: dict[str, Any] = {"setting": asdict(setting), "run_dir": str(run_dir), "code": code_version()}
    if setting.pretrained is not None and setting.task == "appearance":  # the 2D head fits appearance only
        result["acc_at_transfer"] = _acc_at_transfer(config, *clips(config, "val"))
    cpu = time.process_time()
    out = train(config, run_dir)
    model = load_exported(run_dir).model
    result.update(
        val_acc=float(out.metrics["val/top1"]),
        val_history=history(run_dir),
        train_seconds=out.train_seconds,
        cpu_seconds=time.process_time() - cpu,
        params=count_parameters(model),
    )
    if conv3t_layers(model):
        result.update(spread(model))
    write_json(result, done)
    return result


def _worker(setting: Setting) -> dict[str, Any]:
    torch.set_num_threads(1)
    return run(setting)


def run_all(settings: Iterable[Setting], workers: int = 1) -> list[dict[str, Any]]:
    """:func:`run` for every setting, ``workers`` processes of one thread each (2D pretraining done first)."""
    settings = list(settings)
    seeds = sorted({s.seed for s in settings if s.pretrained == "frames2d"})
    if workers <= 1:
        torch.set_num_threads(1)
        [pretrained_2d(seed) for seed in seeds]
        return [run(s) for s in settings]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        list(pool.map(pretrained_2d, seeds))
        return list(pool.map(_worker, settings))


def _init_worker() -> None:
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).parent))


def mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def fmt(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    m, s = mean_std([v / scale for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"
