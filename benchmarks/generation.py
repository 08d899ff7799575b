"""Kernel generation alone (forward + backward) per Conv3T shape of the networks: this checkout vs another one.

The convolution a layer runs is the same whichever way its kernel was generated, so the change of a
network's layer sum from a change of kernel generation is the change of this sum. Both implementations
run side by side in one process (interleaved rounds, medians of one thread's CPU time), which is robust on
a shared machine where separate runs of ``layers.py`` differ by more than the effect.

    .venv/bin/python benchmarks/generation.py --baseline /path/to/old/checkout/src/conv3t/nn/functional.py
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

import torch
from layers import network_shapes
from timing import interleaved, median

from conv3t.files import write_json
from conv3t.nn.functional import generate_kernel


def load_baseline(path: str):
    """``generate_kernel`` of another checkout's ``conv3t/nn/functional.py`` (it imports only torch)."""
    spec = importlib.util.spec_from_file_location("baseline_functional", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.generate_kernel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="functional.py of the checkout to compare with")
    ap.add_argument("--models", nargs="+", default=["resnet18_3t", "googlenet_3t"])
    ap.add_argument("--clip", nargs=3, type=int, default=[16, 112, 112])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    old = load_baseline(args.baseline)
    results = {}
    for model in args.models:
        rows, sums = [], {"baseline": 0.0, "now": 0.0}
        for shape, count in network_shapes(model, tuple(args.clip)):
            gen = torch.Generator().manual_seed(0)
            kh, kw = shape.kernel_size[1:]
            out, cin, steps = shape.out_channels, shape.in_channels // shape.groups, shape.kernel_size[0] - 1
            w = torch.randn(out, cin, kh, kw, generator=gen).requires_grad_()
            temporal = [
                (1 + 0.2 * torch.rand(out, steps, generator=gen)).requires_grad_(),
                *[(0.6 * torch.rand(out, steps, generator=gen) - 0.3).requires_grad_() for _ in range(3)],
            ]
            grad = torch.randn(out, cin, steps + 1, kh, kw, generator=gen)

            def step(fn, params=(w, *temporal), grad=grad):
                def run() -> None:
                    for p in params:
                        p.grad = None
                    fn(*params).backward(grad)

                return run

            times = interleaved(
                {"baseline": step(old), "now": step(generate_kernel)}, args.repeats, 2, torch.device("cpu"), clock="cpu"
            )
            ms = {k: median(v) * 1e3 for k, v in times.items()}
            rows.append({"shape": shape.label(), "count": count, **ms})
            for k in sums:
                sums[k] += ms[k] * count
            line = f"  {shape.label():<34} x{count:<2} baseline {ms['baseline']:7.2f}  now {ms['now']:7.2f} ms"
            print(line, flush=True)
        print(f"{model}: generation summed over the network {sums['baseline']:.1f} -> {sums['now']:.1f} ms")
        results[model] = {"rows": rows, "sums_ms": sums}
    if args.json:
        write_json(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
