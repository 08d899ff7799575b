"""Conv3T vs nn.Conv3d per layer shape of the video networks, side by side in one process.

For every distinct convolution shape of 3T-ResNet18 and 3T-GoogLeNet (traced on meta tensors from
``conv3t.models``) at a 16x112x112 clip, batch 8 (batch 2 for the 7x7x7 stem): training (forward + backward
into input and parameters, gradients reset to None as ``zero_grad`` does) and inference (eval, no_grad) of
a Conv3T and of an nn.Conv3d of the same arguments, plus the kernel generation alone. Prints medians, their
ratios and the sums over each network (each shape weighted by how often it occurs).

    .venv/bin/python benchmarks/layers.py                      # both networks, ~5 minutes on 2 cores
    .venv/bin/python benchmarks/layers.py --models resnet18_3t --repeats 9 --json out.json
    .venv/bin/python benchmarks/layers.py --methods matrix grid_sample --no-crop
    .venv/bin/python benchmarks/layers.py --smoke              # tiny sizes, seconds
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import json
import sys
import time
from dataclasses import dataclass

import torch
from timing import interleaved, machine, maybe_autocast, median, parse_dtype
from torch import nn

from conv3t import Conv3T
from conv3t.models import create_model


@dataclass(frozen=True)
class LayerShape:
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int]
    dilation: tuple[int, int, int]
    groups: int
    frames: int
    height: int
    width: int
    stem: bool  # first layer: its input is the data (no input gradient)

    def label(self) -> str:
        k = "x".join(map(str, self.kernel_size))
        s = "" if self.stride == (1, 1, 1) else "/" + "".join(map(str, self.stride))
        return f"{self.in_channels}->{self.out_channels} {k}{s} @{self.frames}x{self.height}x{self.width}"


def network_shapes(model_name: str, clip: tuple[int, int, int]) -> list[tuple[LayerShape, int]]:
    """Distinct Conv3T shapes of a registered model on one clip, with how often each occurs."""
    model = create_model(model_name, num_classes=27).eval().to("meta")
    counts: collections.Counter[LayerShape] = collections.Counter()
    first: list[Conv3T] = []

    def hook(module: Conv3T, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if not first:
            first.append(module)
        _, _, t, h, w = inputs[0].shape
        shape = LayerShape(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,  # type: ignore[arg-type]
            module.dilation,
            module.groups,
            t,
            h,
            w,
            module is first[0],
        )
        counts[shape] += 1

    for module in model.modules():
        if isinstance(module, Conv3T):
            module.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.empty(1, 3, *clip, device="meta"))
    return list(counts.items())


def _randomize(layer: Conv3T) -> Conv3T:
    with torch.no_grad():
        layer.scale.uniform_(0.85, 1.15)
        layer.rotation.uniform_(-0.3, 0.3)
        layer.translation_x.uniform_(-0.2, 0.2)
        layer.translation_y.uniform_(-0.2, 0.2)
    return layer


def bench_shape(
    shape: LayerShape,
    batch: int,
    device: torch.device,
    methods: list[str],
    repeats: int,
    warmup: int,
    autocast: torch.dtype | None = None,
    channels_last: bool = False,
    compile_layers: bool = False,
    crop: bool = True,
    budget_s: float | None = None,
    clock: str = "wall",
) -> dict[str, float]:
    """Median seconds of train/eval for nn.Conv3d and each Conv3T method, and of kernel generation."""
    args = dict(
        in_channels=shape.in_channels,
        out_channels=shape.out_channels,
        kernel_size=shape.kernel_size,
        stride=shape.stride,
        padding=shape.padding,
        dilation=shape.dilation,
        groups=shape.groups,
    )
    if compile_layers:
        torch._dynamo.reset()  # every shape compiles afresh instead of piling up recompilations of forward
    layers: dict[str, nn.Module] = {"conv3d": nn.Conv3d(**args, device=device)}
    for method in methods:
        layer = _randomize(Conv3T(**args, device=device, kernel_method=method))  # type: ignore[arg-type]
        layer.temporal_crop = crop
        layers[f"3t_{method}"] = layer
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    for layer in layers.values():
        layer.to(memory_format=memory_format)
    x = torch.randn(batch, shape.in_channels, shape.frames, shape.height, shape.width, device=device)
    x = x.contiguous(memory_format=memory_format).requires_grad_(not shape.stem)
    # inference on separate copies in eval mode: a training step on the same module would drop the cache
    eval_layers = {name: copy.deepcopy(layer).eval() for name, layer in layers.items()}
    runners = {name: torch.compile(layer) if compile_layers else layer for name, layer in layers.items()}
    eval_runners = {name: torch.compile(m) if compile_layers else m for name, m in eval_layers.items()}
    with torch.no_grad(), maybe_autocast(device, autocast):
        grad_out = torch.randn_like(runners["conv3d"](x))

    def train(name: str):
        module, runner = layers[name], runners[name]

        def step() -> None:
            for p in module.parameters():
                p.grad = None
            x.grad = None
            with maybe_autocast(device, autocast):
                y = runner(x)
            y.backward(grad_out)

        return step

    def infer(name: str):
        runner = eval_runners[name]

        def step() -> None:
            with torch.no_grad(), maybe_autocast(device, autocast):
                runner(x)

        return step

    def generate(layer: Conv3T):
        def step() -> None:
            for p in layer.parameters():
                p.grad = None
            layer.kernel().backward(grad_kernel)

        return step

    first = layers[f"3t_{methods[0]}"]
    assert isinstance(first, Conv3T)
    with torch.no_grad():
        grad_kernel = torch.randn_like(first.kernel())
    # Training and inference are timed in separate interleaved groups: alternating a training and an
    # inference convolution of the same shape makes oneDNN redo its weight reorders on every call (measured
    # 5.5 -> 15 ms for Conv3d inference at 512 channels), which would charge both sides with a cost that
    # neither has in a real training loop or in deployment.
    groups = [
        {f"train_{name}": train(name) for name in layers},
        {f"eval_{name}": infer(name) for name in layers},
        {f"kernel_{methods[0]}": generate(first)},
    ]
    result: dict[str, float] = {}
    for fns in groups:
        times = interleaved(fns, repeats, warmup, device, budget_s, clock)
        result |= {name: median(values) for name, values in times.items()}
    return result


def run(
    model_names: list[str],
    clip: tuple[int, int, int],
    batch: int,
    stem_batch: int,
    device: torch.device,
    methods: list[str],
    repeats: int,
    warmup: int,
    autocast: torch.dtype | None = None,
    channels_last: bool = False,
    compile_layers: bool = False,
    crop: bool = True,
    deadline: float | None = None,
    clock: str = "wall",
    log=print,
    partial: dict[str, object] | None = None,
) -> dict[str, object]:
    """Benchmark every distinct shape of each model; returns a JSON-able result with per-network sums.

    ``partial``, if given, is filled with the rows as they are measured (kept when a time box interrupts).
    """
    results: dict[str, object] = {} if partial is None else partial
    measured: dict[LayerShape, dict[str, float]] = {}
    for model_name in model_names:
        rows: list[dict] = []
        results[model_name] = {"rows": rows}
        for shape, count in network_shapes(model_name, clip):
            if deadline is not None and time.perf_counter() > deadline:
                log(f"  {model_name}: time box reached, remaining shapes skipped")
                break
            if shape not in measured:
                n = stem_batch if shape.stem else batch
                measured[shape] = bench_shape(
                    shape,
                    n,
                    device,
                    methods,
                    repeats,
                    warmup,
                    autocast,
                    channels_last,
                    compile_layers,
                    crop,
                    clock=clock,
                )
            row = {"shape": shape.label(), "count": count, "batch": stem_batch if shape.stem else batch}
            row |= {k: v * 1e3 for k, v in measured[shape].items()}  # milliseconds
            rows.append(row)
            log(format_row(row, methods))
        totals = (
            {
                key: sum(r[key] * r["count"] for r in rows)
                for key in rows[0]
                if key.startswith(("train_", "eval_", "kernel_"))
            }
            if rows
            else {}
        )
        results[model_name] = {"rows": rows, "sums_ms": totals, "ratios": sum_ratios(totals, methods)}
        if totals:
            log(f"  {model_name} sum over the network: " + format_sums(totals, methods))
    return results


def sum_ratios(totals: dict[str, float], methods: list[str]) -> dict[str, float]:
    out = {}
    for method in methods:
        for mode in ("train", "eval"):
            key = f"{mode}_3t_{method}"
            if key in totals and totals.get(f"{mode}_conv3d"):
                out[f"{mode}_{method}"] = totals[key] / totals[f"{mode}_conv3d"]
    return out


def format_row(row: dict, methods: list[str]) -> str:
    parts = [f"  {row['shape']:<34} x{row['count']:<2} b{row['batch']:<3}"]
    for mode in ("train", "eval"):
        base = row[f"{mode}_conv3d"]
        parts.append(f"{mode} 3D {base:8.2f}")
        for method in methods:
            v = row.get(f"{mode}_3t_{method}")
            if v is not None:
                parts.append(f"3T[{method}] {v:8.2f} ({v / base:4.2f}x)")
    k = row.get(f"kernel_{methods[0]}")
    if k is not None:
        parts.append(f"kernel gen fwd+bwd {k:6.2f}")
    return " | ".join(parts)


def format_sums(totals: dict[str, float], methods: list[str]) -> str:
    parts = []
    for mode in ("train", "eval"):
        base = totals[f"{mode}_conv3d"]
        parts.append(f"{mode} 3D {base:.1f} ms")
        for method in methods:
            v = totals.get(f"{mode}_3t_{method}")
            if v is not None:
                parts.append(f"3T[{method}] {v:.1f} ms ({v / base:.3f}x)")
    return " | ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet18_3t", "googlenet_3t"])
    ap.add_argument("--clip", nargs=3, type=int, default=[16, 112, 112], metavar=("T", "H", "W"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--stem-batch", type=int, default=2, help="batch of the 7x7x7 stem layer")
    ap.add_argument("--methods", nargs="+", default=["matrix"], help="Conv3T kernel methods to compare")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--autocast", default=None, help="none | bf16 | fp16")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile each layer")
    ap.add_argument("--no-crop", action="store_true", help="generate all kernel slices even for short inputs")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="cpu: process CPU time")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--smoke", action="store_true", help="tiny clip and batch, 2 repeats (checks the script)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.clip, args.batch, args.stem_batch, args.repeats, args.warmup = [8, 32, 32], 1, 1, 2, 1
        args.models = args.models[:1]
    device = torch.device(args.device)
    info = machine(device)
    print(f"# layers: {info}", flush=True)
    print(
        f"# clip {args.clip}, batch {args.batch} (stem {args.stem_batch}), times in ms (medians of "
        f"{args.repeats}), methods {args.methods}",
        flush=True,
    )
    result = run(
        args.models,
        tuple(args.clip),
        args.batch,
        args.stem_batch,
        device,
        args.methods,
        args.repeats,
        args.warmup,
        parse_dtype(args.autocast),
        args.channels_last,
        args.compile,
        not args.no_crop,
        clock=args.clock,
        log=lambda line: print(line, flush=True),
    )
    info["load_avg_after"] = machine(device)["load_avg_1_5_15"]
    if args.json:
        with contextlib.suppress(OSError), open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "results": result}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
