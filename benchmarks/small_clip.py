"""Training step of 3T vs 3D models on a small clip, where a layer's fixed cost is not hidden by its convolution.

On a GPU a convolution over a batch is fast and what a layer costs per call (operations launched, Python)
decides the speed. A small clip (batch 2, 16x32x32) puts a CPU in the same regime: the convolutions are
cheap, kernel generation is not. Training step = ``zero_grad(set_to_none=True)``, forward, cross-entropy,
backward, SGD-momentum step; one torch thread; rounds interleave the variants and the parameter states in
one process (rotating order). Every call is timed on both clocks: process CPU time (robust against other
processes on a shared machine) and wall time; medians of each are printed.

Variants: ``3t_batched`` (``conv3t.nn.batch_kernel_generation`` switched on: the sampling matrices of all
layers of one kernel size in one computation; ``create_model``'s default), ``3t_layerwise`` (every Conv3T
generates its kernel alone), ``3t_full_product`` (batched, slice 0 multiplied by ``C_0 = I`` as before
issue 20), ``3t_dense_stem`` (batched, with the 7x7x7 stem's slices built by dense stepwise products as
before issue 28 instead of four-tap bilinear warps), ``3d`` (the twin with ``nn.Conv3d``), and with
``--compiled`` ``3t_compiled``
and ``3d_compiled`` (``torch.compile(model, fullgraph=True)``, inductor; forward + backward compiled, the
optimizer step eager; compile time reported, not timed). All from ``create_model`` with random weights.

Parameter states (``--params``): ``identity`` (scale 1, rotation and translations 0: where training from a
2D network starts) and ``random`` (rotation and translations uniform in [-0.3, 0.3]: trained-like; what this
script measured before issue 20). What decides the figure is printed first: CPU model, vector extensions,
clock, torch's CPU capability, threads, load average.

    .venv/bin/python benchmarks/small_clip.py                         # ResNet18 + GoogLeNet, both states
    .venv/bin/python benchmarks/small_clip.py --models googlenet --params identity --rounds 30 --json small.json
    .venv/bin/python benchmarks/small_clip.py --compiled --variants 3t_batched 3d   # + inductor columns
    .venv/bin/python benchmarks/small_clip.py --device cuda          # on a GPU (CPU time is then meaningless)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence

import torch
from timing import machine, sync
from torch import nn

from conv3t.files import write_json
from conv3t.models import create_model
from conv3t.nn import conv3t_layers, fused
from conv3t.nn import functional as nn_functional

try:  # the model-level generation of issue 13; absent in older checkouts (baseline runs)
    from conv3t.nn import batch_kernel_generation
except ImportError:  # pragma: no cover - baseline only
    batch_kernel_generation = None

PARAM_STATES = ("identity", "random")
_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_details() -> dict[str, object]:
    """What beyond the model name decides CPU speed: vector extensions, clock, torch's kernels, oneDNN limits."""
    flags: set[str] = set()
    mhz = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("cpu MHz") and mhz is None:
                    mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    return {
        "flags": [f for f in _FLAGS if f in flags],
        "mhz": mhz,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
    }


def _logits(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out  # type: ignore[return-value,index]


def build(family: str, variant: str, device: torch.device, params: str = "random") -> nn.Module:
    """``family`` (resnet18, googlenet) in one variant; temporal parameters at ``params`` (identity, random)."""
    if params not in PARAM_STATES:
        raise SystemExit(f"--params must be one of {PARAM_STATES}, got {params!r}")
    torch.manual_seed(0)
    model = create_model(f"{family}_{variant[:2]}", num_classes=27).to(device)
    if params == "random":
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for _, layer in conv3t_layers(model, min_depth=2):
                for p in (layer.rotation, layer.translation_x, layer.translation_y):
                    p.copy_(torch.empty(p.shape).uniform_(-0.3, 0.3, generator=gen))
    if variant.startswith("3t"):
        if batch_kernel_generation is None:
            if variant == "3t_batched":
                raise SystemExit("3t_batched needs conv3t.nn.batch_kernel_generation (issue 13)")
        else:  # create_model switches it on for 3T models: the layerwise variant switches it off again
            batch_kernel_generation(model, enabled=variant != "3t_layerwise")
    return model


_SPARSE_MIN_PIXELS = getattr(nn_functional, "SPARSE_MIN_PIXELS", None)  # absent before issue 28


def train_step_fn(
    model: nn.Module,
    clip: torch.Tensor,
    labels: torch.Tensor,
    compiled: bool = False,
    full_product: bool = False,
    dense_stem: bool = False,
):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    model.train()
    forward = torch.compile(model, fullgraph=True) if compiled else model

    def step() -> None:
        fused.skip_identity_slice = not full_product  # absent before issue 20: setting it is then harmless
        if _SPARSE_MIN_PIXELS is not None:  # 3t_dense_stem: no layer is warped with four taps
            nn_functional.SPARSE_MIN_PIXELS = 10**9 if dense_stem else _SPARSE_MIN_PIXELS
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(_logits(forward(clip)), labels).backward()
        optimizer.step()

    return step


def timed_rounds(fns: dict, rounds: int, warmup: int, device: torch.device) -> dict[str, dict[str, list[float]]]:
    """Seconds per call on both clocks (``cpu``, ``wall``), rounds interleaved with a rotating order."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {name: {"cpu": [], "wall": []} for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync(device)
            c0, w0 = time.process_time(), time.perf_counter()
            fns[name]()
            sync(device)
            times[name]["cpu"].append(time.process_time() - c0)
            times[name]["wall"].append(time.perf_counter() - w0)
    return times


def run(
    families: list[str],
    variants: list[str],
    clip: tuple[int, int, int, int],
    rounds: int,
    warmup: int,
    device: torch.device,
    clock: str = "cpu",
    log=print,
    params: str = "random",
) -> dict[str, dict[str, float]]:
    """Median milliseconds (on ``clock``) of a training step per family and variant; see :func:`run_states`."""
    full = run_states(families, variants, clip, rounds, warmup, device, log, [params])[params]
    return {family: {v: row[v][clock] for v in row if v != "compile_s"} for family, row in full.items()}


def run_states(
    families: list[str],
    variants: list[str],
    clip: tuple[int, int, int, int],
    rounds: int,
    warmup: int,
    device: torch.device,
    log=print,
    states: Sequence[str] = PARAM_STATES,
) -> dict[str, dict[str, dict]]:
    """``{state: {family: {variant: {"cpu": ms, "wall": ms}, "compile_s": {variant: s}}}}``, every variant *and
    parameter state* of a family interleaved within each round.

    Why interleaved states: timed in one block per state, the same 3D step (which has no temporal parameters)
    measured 140–149 ms in one block and 113–114 ms in the next on the dev VM; only calls that alternate
    within a round see the same machine."""
    n, t, h, w = clip
    results: dict[str, dict[str, dict]] = {p: {} for p in states}
    for family in families:
        torch.manual_seed(2)
        x = torch.randn(n, 3, t, h, w, device=device)
        labels = torch.randint(0, 27, (n,), device=device)
        fns, compile_s = {}, {}
        for p in states:
            for v in variants:
                key = (v, p)
                compiled = v.endswith("_compiled")
                full = v == "3t_full_product"  # 3t_batched with slice 0 multiplied by C_0 = I (before issue 20)
                dense = v == "3t_dense_stem"  # 3t_batched with the stem's dense stepwise products (before issue 28)
                fns[key] = train_step_fn(build(family, v, device, p), x, labels, compiled, full, dense)
                if compiled:  # the first call compiles forward and backward; not part of the timing
                    start = time.perf_counter()
                    fns[key]()
                    compile_s[key] = round(time.perf_counter() - start, 1)
        times = timed_rounds(fns, rounds, warmup, device)
        for p in states:
            row: dict = {v: {c: statistics.median(times[(v, p)][c]) * 1e3 for c in ("cpu", "wall")} for v in variants}
            row["compile_s"] = {v: s for (v, q), s in compile_s.items() if q == p}
            results[p][family] = row
            _log_row(log, family, p, variants, row)
    return results


def _log_row(log, family: str, params: str, variants: list[str], row: dict) -> None:
    for clock in ("cpu", "wall"):
        parts = []
        for v in variants:
            base = row.get("3d_compiled" if v.endswith("_compiled") else "3d", {}).get(clock)
            ratio = f" ({row[v][clock] / base:.3f}x)" if base and not v.startswith("3d") else ""
            parts.append(f"{v} {row[v][clock]:7.1f} ms{ratio}")
        log(f"{family:<10} {params:<8} {clock:<4} " + " | ".join(parts))
    if row["compile_s"]:
        log(
            f"{family:<10} {params:<8} compile (first step, wall) "
            + ", ".join(f"{k} {s} s" for k, s in row["compile_s"].items())
        )


def profile_steps(
    family: str, variants: list[str], clip: tuple[int, int, int, int], params: str, device: torch.device, top: int = 12
) -> None:
    """Print the operations that take the most self CPU time per training step (5 profiled steps each)."""
    from torch.profiler import ProfilerActivity, profile

    n, t, h, w = clip
    torch.manual_seed(2)
    x, labels = torch.randn(n, 3, t, h, w, device=device), torch.randint(0, 27, (n,), device=device)
    for v in variants:
        step = train_step_fn(
            build(family, v, device, params),
            x,
            labels,
            full_product=v == "3t_full_product",
            dense_stem=v == "3t_dense_stem",
        )
        for _ in range(3):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                step()
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events) / 5e3
        print(f"== {family} {v} {params}: self CPU {total:.1f} ms per step", flush=True)
        for e in events[:top]:
            print(f"   {e.key:<45} {e.self_cpu_time_total / 5e3:7.2f} ms  {e.count // 5:4d} calls", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet18", "googlenet"])
    ap.add_argument("--variants", nargs="+", default=["3t_batched", "3t_layerwise", "3d"])
    ap.add_argument("--compiled", action="store_true", help="add 3t_compiled and 3d_compiled (inductor)")
    ap.add_argument("--params", nargs="+", default=list(PARAM_STATES), choices=PARAM_STATES)
    ap.add_argument("--clip", nargs=4, type=int, default=[2, 16, 32, 32], metavar=("N", "T", "H", "W"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--profile", action="store_true", help="profile the first model and parameter state instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    variants = args.variants + (["3t_compiled", "3d_compiled"] if args.compiled else [])
    info = {**machine(device), **cpu_details()}
    print(f"# small clip {args.clip}, params {args.params}: {info}", flush=True)
    if args.profile:
        profile_steps(args.models[0], variants, tuple(args.clip), args.params[0], device)
        return 0
    log = lambda line: print(line, flush=True)  # noqa: E731
    results = run_states(args.models, variants, tuple(args.clip), args.rounds, args.warmup, device, log, args.params)
    info["load_avg_after"] = machine(device)["load_avg_1_5_15"]
    print(f"# load average after: {info['load_avg_after']}", flush=True)
    if args.json:
        write_json({"machine": info, "args": vars(args), "results_ms": results}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
