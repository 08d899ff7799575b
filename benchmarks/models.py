"""Whole-model speed and memory: 3T-ResNet18 vs 3D-ResNet18 vs torchvision's R(2+1)D-18.

Training step (forward, cross-entropy, backward, SGD-momentum step, ``zero_grad(set_to_none=True)``) and
inference (eval, no_grad) on a 16x112x112 clip at batch 8, side by side in one process (interleaved rounds,
medians), as clips per second and ratios to the 3D model. Peak memory of a training step: on CUDA the
allocator's peak; on CPU the peak resident set size of a fresh subprocess per model (after ``import torch``,
so it counts parameters, gradients, optimizer state, activations and allocator slack).

    .venv/bin/python benchmarks/models.py                          # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/models.py --models resnet18_3t resnet18_3d --repeats 3
    .venv/bin/python benchmarks/models.py --smoke                  # tiny clip, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import time

import torch
from timing import interleaved, machine, maybe_autocast, median, parse_dtype
from torch import nn

BASELINE = "resnet18_3d"


def build(name: str, num_classes: int = 27) -> nn.Module:
    """A registered conv3t model, or ``r2plus1d_18`` from torchvision (random weights)."""
    if name == "r2plus1d_18":
        from torchvision.models.video import r2plus1d_18

        return r2plus1d_18(weights=None, num_classes=num_classes)
    from conv3t.models import create_model

    return create_model(name, num_classes=num_classes)


def _logits(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out  # type: ignore[return-value,index]


class Runner:
    """One model with its optimizer, input and labels; ``train_step`` and ``infer`` as the benchmark calls them."""

    def __init__(
        self,
        name: str,
        clip: tuple[int, int, int],
        batch: int,
        device: torch.device,
        autocast: torch.dtype | None,
        channels_last: bool,
        compile_model: bool,
    ) -> None:
        torch.manual_seed(0)
        memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.model = build(name).to(device).to(memory_format=memory_format)
        self.eval_model = copy.deepcopy(self.model).eval()
        self.train_fn = torch.compile(self.model) if compile_model else self.model
        self.eval_fn = torch.compile(self.eval_model) if compile_model else self.eval_model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.x = torch.randn(batch, 3, *clip, device=device).contiguous(memory_format=memory_format)
        self.y = torch.randint(0, 27, (batch,), device=device)
        self.device, self.autocast = device, autocast

    def train_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with maybe_autocast(self.device, self.autocast):
            loss = nn.functional.cross_entropy(_logits(self.train_fn(self.x)), self.y)
        loss.backward()
        self.optimizer.step()

    def infer(self) -> None:
        with torch.no_grad(), maybe_autocast(self.device, self.autocast):
            self.eval_fn(self.x)


def cuda_peak_memory(runner: Runner) -> float:
    """MiB at the allocator's peak during one training step (after a warm-up step)."""
    runner.train_step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    runner.train_step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def cpu_peak_memory(
    name: str, clip: tuple[int, int, int], batch: int, threads: int, timeout: float, crop: bool = True
) -> dict:
    """Peak RSS (MiB) during two training steps of one model in a fresh subprocess, and the RSS before it."""
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-probe", name, "--clip", *map(str, clip)]
    cmd += ["--batch", str(batch), "--threads", str(threads)] + ([] if crop else ["--no-crop"])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as err:
        return {"error": f"{type(err).__name__}: {err}"[:300]}


def memory_probe(name: str, clip: tuple[int, int, int], batch: int) -> None:
    """Print the RSS before building the model and the peak RSS sampled (every ms) during two training steps."""
    import threading

    page = os.sysconf("SC_PAGE_SIZE")

    def rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 2**20

    import torchvision.models.video  # noqa: F401  (import every library before the baseline)

    import conv3t.models  # noqa: F401

    before = rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    runner = Runner(name, clip, batch, torch.device("cpu"), None, False, False)
    for _ in range(2):
        runner.train_step()
    done.set()
    sampler.join()
    print(
        json.dumps(
            {
                "rss_before_model_mib": round(before, 1),
                "peak_rss_mib": round(peak[0], 1),
                "peak_minus_before_mib": round(peak[0] - before, 1),
            }
        )
    )


def run(
    names: list[str],
    clip: tuple[int, int, int],
    batch: int,
    device: torch.device,
    repeats: int,
    warmup: int,
    autocast: torch.dtype | None = None,
    channels_last: bool = False,
    compile_model: bool = False,
    memory: bool = True,
    threads: int = 2,
    budget_s: float | None = None,
    deadline: float | None = None,
    clock: str = "wall",
    modes: tuple[str, ...] = ("train", "eval"),
    log=print,
    partial: dict[str, object] | None = None,
) -> dict[str, object]:
    """Time (and measure) each model; ``partial``, if given, receives results as they come (time boxes)."""
    runners = {}
    for name in names:
        try:
            runners[name] = Runner(name, clip, batch, device, autocast, channels_last, compile_model)
        except Exception as err:  # a model that does not build is reported, the others still run
            log(f"  {name}: cannot build: {type(err).__name__}: {err}")
    for name, runner in list(runners.items()):  # one step each first: a model that fails (e.g. OOM) is dropped
        try:
            if "train" in modes:
                runner.train_step()
            if "eval" in modes:
                runner.infer()
        except Exception as err:
            log(f"  {name}: dropped: {type(err).__name__}: {str(err)[:200]}")
            del runners[name]
            if device.type == "cuda":
                torch.cuda.empty_cache()
    result: dict[str, dict[str, float]] = {} if partial is None else partial  # type: ignore[assignment]
    result |= {name: {} for name in runners}
    for i, mode in enumerate(modes):
        fns = {name: (r.train_step if mode == "train" else r.infer) for name, r in runners.items()}
        budget = budget_s
        if deadline is not None:  # share what is left after the (compiling) first steps among the modes
            budget = max((deadline - time.perf_counter()) / (len(modes) - i) * 0.8, 1.0)
        times = interleaved(fns, repeats, warmup, device, budget, clock)
        for name, values in times.items():
            result[name][f"{mode}_s"] = median(values)
            result[name][f"{mode}_clips_per_s"] = batch / median(values)
            result[name][f"{mode}_rounds"] = len(values)
    if memory:
        for name, runner in runners.items():
            if device.type == "cuda":
                result[name]["peak_train_memory_mib"] = cuda_peak_memory(runner)
            else:
                from conv3t import Conv3T

                probe = cpu_peak_memory(name, clip, batch, threads, timeout=600, crop=Conv3T.temporal_crop)
                result[name] |= {f"cpu_{k}": v for k, v in probe.items()}
    base = result.get(BASELINE) or next((r for n, r in result.items() if n.endswith("_3d") and r), None)
    for name, row in result.items():
        if base:
            for mode in modes:
                row[f"{mode}_time_ratio_to_3d"] = row[f"{mode}_s"] / base[f"{mode}_s"]
        log("  " + format_row(name, row))
    return result


def format_row(name: str, row: dict) -> str:
    parts = [f"{name:<14}"]
    for mode in ("train", "eval"):
        if f"{mode}_s" not in row:
            continue
        ratio = row.get(f"{mode}_time_ratio_to_3d")
        parts.append(
            f"{mode} {row[f'{mode}_s'] * 1e3:9.1f} ms {row[f'{mode}_clips_per_s']:7.2f} clips/s"
            + (f" ({ratio:.3f}x 3D)" if ratio is not None else "")
        )
    if "peak_train_memory_mib" in row:
        parts.append(f"peak {row['peak_train_memory_mib']:.0f} MiB")
    if "cpu_peak_minus_before_mib" in row:
        parts.append(f"peak RSS +{row['cpu_peak_minus_before_mib']:.0f} MiB")
    return " | ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet18_3t", "resnet18_3d", "r2plus1d_18"])
    ap.add_argument("--clip", nargs=3, type=int, default=[16, 112, 112], metavar=("T", "H", "W"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--autocast", default=None, help="none | bf16 | fp16")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="cpu: process CPU time")
    ap.add_argument("--json", default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny clip and batch, 2 repeats (checks the script)")
    ap.add_argument("--no-crop", action="store_true", help="Conv3T.temporal_crop = False (all kernel slices)")
    ap.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.clip, args.batch, args.repeats, args.warmup = [8, 32, 32], 2, 2, 1
    if args.no_crop:
        from conv3t import Conv3T

        Conv3T.temporal_crop = False
    if args.memory_probe:
        memory_probe(args.memory_probe, tuple(args.clip), args.batch)
        return 0
    device = torch.device(args.device)
    info = machine(device)
    print(f"# models: {info}", flush=True)
    print(f"# clip {args.clip}, batch {args.batch}, medians of {args.repeats} interleaved rounds", flush=True)
    start = time.perf_counter()
    result = run(
        args.models,
        tuple(args.clip),
        args.batch,
        device,
        args.repeats,
        args.warmup,
        parse_dtype(args.autocast),
        args.channels_last,
        args.compile,
        not args.no_memory,
        args.threads,
        clock=args.clock,
        log=lambda line: print(line, flush=True),
    )
    info["load_avg_after"] = machine(device)["load_avg_1_5_15"]
    info["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        with contextlib.suppress(OSError), open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "results": result}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
