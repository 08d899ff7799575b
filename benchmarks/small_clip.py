"""Training step of 3T vs 3D models on a small clip, where a layer's fixed cost is not hidden by its convolution.

On a GPU a convolution over a batch is fast and what a layer costs per call (operations launched, Python)
decides the speed. A small clip (batch 2, 16x32x32) puts a CPU in the same regime: the convolutions are
cheap, kernel generation is not. Training step = ``zero_grad(set_to_none=True)``, forward, cross-entropy,
backward, SGD-momentum step; one torch thread; rounds interleave the variants in one process (rotating
order); medians of process CPU time (``--clock wall`` on a quiet machine).

Variants: ``3t_batched`` (``conv3t.nn.batch_kernel_generation`` switched on: the sampling matrices of all
layers of one kernel size in one computation), ``3t_layerwise`` (every Conv3T generates its kernel alone)
and ``3d`` (the twin with ``nn.Conv3d``). All from ``create_model``, random weights, non-identity temporal
parameters.

    .venv/bin/python benchmarks/small_clip.py                         # ResNet18 + GoogLeNet, ~2 minutes
    .venv/bin/python benchmarks/small_clip.py --models googlenet --rounds 30 --json small.json
    .venv/bin/python benchmarks/small_clip.py --device cuda --clock wall   # on a GPU
"""

from __future__ import annotations

import argparse
import sys

import torch
from timing import interleaved, machine, median
from torch import nn

from conv3t.files import write_json
from conv3t.models import create_model
from conv3t.nn import conv3t_layers

try:  # the model-level generation of issue 13; absent in older checkouts (baseline runs)
    from conv3t.nn import batch_kernel_generation
except ImportError:  # pragma: no cover - baseline only
    batch_kernel_generation = None


def _logits(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out  # type: ignore[return-value,index]


def build(family: str, variant: str, device: torch.device) -> nn.Module:
    """``family`` (resnet18, googlenet) in one variant, with non-identity temporal parameters."""
    torch.manual_seed(0)
    model = create_model(f"{family}_{variant[:2]}", num_classes=27).to(device)
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
            batch_kernel_generation(model, enabled=variant == "3t_batched")
    return model


def train_step_fn(model: nn.Module, clip: torch.Tensor, labels: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(_logits(model(clip)), labels).backward()
        optimizer.step()

    return step


def run(
    families: list[str],
    variants: list[str],
    clip: tuple[int, int, int, int],
    rounds: int,
    warmup: int,
    device: torch.device,
    clock: str = "cpu",
    log=print,
) -> dict[str, dict[str, float]]:
    """Median milliseconds of a training step per family and variant, interleaved rounds in one process."""
    n, t, h, w = clip
    results: dict[str, dict[str, float]] = {}
    for family in families:
        torch.manual_seed(2)
        x = torch.randn(n, 3, t, h, w, device=device)
        labels = torch.randint(0, 27, (n,), device=device)
        fns = {v: train_step_fn(build(family, v, device), x, labels) for v in variants}
        times = interleaved(fns, rounds, warmup, device, clock=clock)
        medians = {v: median(times[v]) * 1e3 for v in variants}
        results[family] = medians
        base = medians.get("3d")
        line = " | ".join(
            f"{v} {ms:7.1f} ms" + (f" ({ms / base:.3f}x)" if base and v != "3d" else "") for v, ms in medians.items()
        )
        log(f"{family:<10} {line}")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet18", "googlenet"])
    ap.add_argument("--variants", nargs="+", default=["3t_batched", "3t_layerwise", "3d"])
    ap.add_argument("--clip", nargs=4, type=int, default=[2, 16, 32, 32], metavar=("N", "T", "H", "W"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device)
    print(f"# small clip {args.clip}: {info}", flush=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    results = run(args.models, args.variants, tuple(args.clip), args.rounds, args.warmup, device, args.clock, log)
    info["load_avg_after"] = machine(device)["load_avg_1_5_15"]
    if args.json:
        write_json({"machine": info, "args": vars(args), "results_ms": results}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
