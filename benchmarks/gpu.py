"""Conv3T speed on a GPU: layers and whole models at the paper's clip size, bf16 autocast, channels_last_3d.

One prepared run of at most ~5 minutes by default (``--total-s``; each part is time-boxed; an error in one part
is reported and the others still run), in this order:

1. small clip (issues 13, 20): ResNet18 and GoogLeNet training steps on a 2x16x32x32 clip, fp32, at the
   identity start and at random (trained-like) temporal parameters: 3T batched, 3T layer by layer, 3D, and
   both compiled (inductor) (``benchmarks/small_clip.py``).
2. layers, eager: every distinct Conv3T shape of 3T-ResNet18 at 30x150x224, batch 16; Conv3T ("matrix" and
   "grid_sample" kernels) vs nn.Conv3d; training (fwd+bwd) and inference; sums over the network.
3. models, eager, bf16 autocast and fp32: 3T vs 3D ResNet18 and GoogLeNet (and R(2+1)D-18) at 30x150x224,
   training step and inference, clips/s, peak memory.
4. models, torch.compile (bf16): 3T vs 3D ResNet18 and GoogLeNet, training then inference.
5. layers, torch.compile: as 2 with the "matrix" kernel, as far as the time box allows.

Prints a compact table and writes ``gpu_bench.json`` to ``$OUT`` (or ``--out``) after every part.

    PYTHONUNBUFFERED=1 python benchmarks/gpu.py                 # on the GPU machine, ~5 minutes
    .venv/bin/python benchmarks/gpu.py --smoke                  # CPU check of the script, tiny sizes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layers
import models
import small_clip
from timing import machine

from conv3t.files import write_json


class PartTimeout(BaseException):  # not caught by the per-model "except Exception"
    pass


@contextlib.contextmanager
def time_box(seconds: float):
    """Raise PartTimeout in the main thread after ``seconds`` (checked when Python regains control)."""

    def handler(signum, frame):
        raise PartTimeout(f"time box of {seconds:.0f} s reached")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


BUDGETS = {  # shares of --total-s per part; layers_compiled gets what is left
    "small_clip": 0.14,
    "layers": 0.1,
    "models": 0.12,
    "models_fp32": 0.1,
    "models_compiled_train": 0.34,
    "models_compiled_eval": 0.1,
}


class Parts:
    """Runs the time-boxed parts, keeps their results (or errors) in ``report`` and saves it after each."""

    def __init__(self, args: argparse.Namespace, report: dict, cuda: bool) -> None:
        self.args, self.report, self.cuda = args, report, cuda
        self.start = time.perf_counter()

    def save(self) -> None:
        if self.args.out:
            os.makedirs(self.args.out, exist_ok=True)
            write_json(json.loads(json.dumps(self.report, default=str)), os.path.join(self.args.out, "gpu_bench.json"))

    def run(self, name: str, fn: Callable[[float, dict], object]) -> None:
        if name in self.args.skip:
            return
        remaining = self.args.total_s - (time.perf_counter() - self.start)
        box = min(BUDGETS[name] * self.args.total_s, remaining) if name in BUDGETS else remaining
        if box < 10:
            self.report["parts"][name] = {"skipped": f"only {remaining:.0f} s left"}
            print(f"## {name}: skipped, {remaining:.0f} s left", flush=True)
            return
        print(f"## {name} (time box {box:.0f} s)", flush=True)
        t0 = time.perf_counter()
        partial: dict = {}
        try:
            with time_box(box):
                result = fn(time.perf_counter() + box * 0.9, partial)
            entry = {"result": result}
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt):
                raise
            print(f"   {name} failed: {type(err).__name__}: {err}", flush=True)
            entry = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
            entry["partial_result"] = partial  # what was measured before the error or time box
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        self.report["parts"][name] = entry
        if self.cuda:
            torch.cuda.empty_cache()
        self.save()


def settings(smoke: bool, cuda: bool) -> dict:
    """Sizes of every part: the paper's clip on a GPU, tiny ones for ``--smoke``."""
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    for limit in ("recompile_limit", "cache_size_limit"):  # name differs between torch versions
        if hasattr(torch._dynamo.config, limit):
            setattr(torch._dynamo.config, limit, 64)
    models_ = ["resnet18_3t", "resnet18_3d", "googlenet_3t", "googlenet_3d", "r2plus1d_18"]
    variants = ["3t_batched", "3t_layerwise", "3d", "3t_compiled", "3d_compiled"]
    if not smoke:
        small = {"clip": (2, 16, 32, 32), "rounds": 10, "warmup": 3, "families": ["resnet18", "googlenet"],
                 "variants": variants}  # fmt: skip
        return dict(clip=(30, 150, 224), batch=16, repeats=10, warmup=3, models=models_,
                    compiled=models_[:4], memory=True, small=small)  # fmt: skip
    torch.set_num_threads(2)
    # one ResNet18 round of the small clip (GoogLeNet needs >= 7x31x31 and three builds take long on a CPU)
    small = {"clip": (2, 8, 32, 32), "rounds": 1, "warmup": 0, "families": ["resnet18"], "variants": variants[:3]}
    return dict(clip=(8, 32, 32), batch=2, repeats=2, warmup=1, models=models_,
                compiled=["resnet10_3t", "resnet10_3d"], memory=cuda, small=small)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on CPU (or the GPU if present)")
    ap.add_argument("--total-s", type=float, default=285.0, help="time for all parts together")
    ap.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_bench.json (default $OUT)")
    ap.add_argument("--skip", nargs="*", default=[], help="part names to skip")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda and not args.smoke:
        print("no CUDA device: run with --smoke to check the script on CPU", flush=True)
        return 2
    cfg = settings(args.smoke, cuda)
    clip, batch, repeats, warmup, bf16 = cfg["clip"], cfg["batch"], cfg["repeats"], cfg["warmup"], torch.bfloat16
    report: dict = {
        "machine": machine(device),
        "setup": {"clip": clip, "batch": batch, "autocast": "bf16", "channels_last_3d": True, "smoke": args.smoke},
        "parts": {},
    }
    print(f"# gpu bench: {report['machine']}", flush=True)
    print(f"# clip {clip}, batch {batch}, bf16 autocast, channels_last_3d, medians of <= {repeats}", flush=True)
    parts = Parts(args, report, cuda)
    log = lambda line: print(line, flush=True)  # noqa: E731

    def layer_part(compiled: bool) -> Callable[[float, dict], object]:
        methods = ["matrix"] if compiled else ["matrix", "grid_sample"]
        return lambda deadline, partial: layers.run(
            ["resnet18_3t"], clip, batch, batch, device, methods, repeats, warmup, bf16, True, compiled,
            deadline=deadline, log=log, partial=partial,
        )  # fmt: skip

    def model_part(
        names: list[str], compiled: bool, modes=("train", "eval"), dtype: torch.dtype | None = bf16
    ) -> Callable[[float, dict], object]:
        return lambda deadline, partial: models.run(
            names, clip, batch, device, repeats, warmup, dtype, True, compiled,
            memory=cfg["memory"] and "train" in modes, deadline=deadline, modes=modes, log=log, partial=partial,
        )  # fmt: skip

    def small_part(deadline: float, partial: dict) -> object:
        small = cfg["small"]
        for params in small_clip.PARAM_STATES:  # identity start, then trained-like
            partial[params] = small_clip.run(
                small["families"], small["variants"], small["clip"], small["rounds"], small["warmup"], device,
                "wall" if cuda else "cpu", log, params,
            )  # fmt: skip
        return partial

    parts.run("small_clip", small_part)
    parts.run("layers", layer_part(False))
    parts.run("models", model_part(cfg["models"], False))
    parts.run("models_fp32", model_part(cfg["models"], False, dtype=None))
    # compiled models in two parts, so that a slow eval compile cannot lose the training numbers
    parts.run("models_compiled_train", model_part(cfg["compiled"], True, ("train",)))
    parts.run("models_compiled_eval", model_part(cfg["compiled"], True, ("eval",)))
    parts.run("layers_compiled", layer_part(True))
    report["seconds"] = round(time.perf_counter() - parts.start, 1)
    parts.save()
    print(summary(report), flush=True)
    return 0


def summary(report: dict) -> str:
    lines = ["# summary (ratios 3T / 3D, lower is better)"]
    for name, entry in report["parts"].items():
        if "error" in entry or "skipped" in entry:
            lines.append(f"{name:<22} {entry.get('error') or entry.get('skipped')}")
            continue
        result = entry["result"]
        if name == "small_clip":
            for params, rows in result.items():
                for family, row in rows.items():
                    ratios = []
                    for k, v in row.items():
                        base = row.get("3d_compiled" if k.endswith("_compiled") else "3d", float("nan"))
                        ratios.append(f"{k} {v / base:.3f}x")
                    lines.append(f"{name:<22} {params:<8} {family:<12} " + "  ".join(ratios))
            continue
        if name.startswith("layers"):
            ratios = result.get("resnet18_3t", {}).get("ratios", {})
            lines.append(f"{name:<22} " + "  ".join(f"{k} {v:.3f}x" for k, v in ratios.items()))
        else:
            for model, row in result.items():
                text = f"{name:<22} {model:<12}"
                twin = result.get(model[:-3] + "_3d") if model.endswith("_3t") else None  # GoogLeNet vs GoogLeNet
                for mode in ("train", "eval"):
                    if f"{mode}_clips_per_s" in row:
                        ratio = row.get(f"{mode}_time_ratio_to_3d", float("nan"))
                        if twin and f"{mode}_s" in twin and f"{mode}_s" in row:
                            ratio = row[f"{mode}_s"] / twin[f"{mode}_s"]
                        text += f" {mode} {row[f'{mode}_clips_per_s']:8.2f} clips/s ({ratio:.3f}x)"
                mem = row.get("peak_train_memory_mib") or row.get("cpu_peak_minus_before_mib")
                if mem is not None:
                    text += f" peak mem {mem:.0f} MiB"
                lines.append(text)
    lines.append(f"total {report.get('seconds')} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
