"""Kernel generation (forward + backward) with dense sampling matrices vs four-tap bilinear warps, per shape.

Decides ``conv3t.nn.functional.SPARSE_MIN_PIXELS`` (issue 28): for each filter shape ``(in, out, k, D)`` the
form ``"matrix"`` picks by default (``cumulative`` for ``in >= k*k``, else ``stepwise``) and the ``sparse`` form
(``grid_sample`` warps, four taps per kernel element) generate the kernel and backpropagate a fixed upstream
gradient into all five parameters; rounds interleave the two in one process (one thread), medians of the
process CPU time, so that other jobs on a shared machine move both alike.

    .venv/bin/python benchmarks/sparse_generation.py
    .venv/bin/python benchmarks/sparse_generation.py --shapes 3,64,7,7 16,64,5,5 --rounds 21
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import conv3t.nn.functional as functional
from conv3t import Conv3T
from conv3t.nn import randomize_temporal_parameters

DEFAULT_SHAPES = (
    "3,64,7,7",  # the RGB stems of resnet18_3t / googlenet_3t
    "3,64,5,5",
    "16,64,5,5",
    "24,64,7,7",
    "40,64,7,7",
    "64,64,7,7",
    "32,64,5,5",
    "3,64,3,3",
    "8,64,3,3",
)


def _step(params: list[torch.Tensor], upstream: torch.Tensor, form: str):
    dense = functional.resolve_method

    def forced(method, cin, height, width):  # the form under test, whatever the rule says
        return form if form == "sparse" else dense(method, cin, height, width).replace("sparse", "stepwise")

    def step() -> None:
        functional.resolve_method = forced
        try:
            kernel = functional.generate_kernel(*params)
            torch.autograd.grad((kernel * upstream).sum(), params)
        finally:
            functional.resolve_method = dense

    return step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES), help="in,out,k,D per shape")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# load average {tuple(round(x, 2) for x in __import__('os').getloadavg())}", flush=True)
    for shape in args.shapes:
        cin, out, k, depth = (int(v) for v in shape.split(","))
        torch.manual_seed(0)
        layer = Conv3T(cin, out, (depth, k, k))
        randomize_temporal_parameters(layer, 0.3, torch.Generator().manual_seed(0))
        params = [p.detach().clone().requires_grad_() for p in layer.parameters() if p.dim() > 1]
        upstream = torch.randn(out, cin, depth, k, k)
        default = functional.resolve_method("matrix", cin, k, k).replace("sparse", "stepwise")
        fns = {default: _step(params, upstream, default), "sparse": _step(params, upstream, "sparse")}
        times: dict[str, list[float]] = {name: [] for name in fns}
        for r in range(args.rounds):
            for name in list(fns)[r % 2 :] + list(fns)[: r % 2]:
                start = time.process_time()
                fns[name]()
                times[name].append(time.process_time() - start)
        med = {name: statistics.median(v) * 1e3 for name, v in times.items()}
        print(
            f"in {cin:3d} out {out:3d} {k}x{k}x{depth}: {default} {med[default]:7.2f} ms | sparse "
            f"{med['sparse']:7.2f} ms | sparse / dense {med['sparse'] / med[default]:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
