"""The kernel product of the cumulative form (``conv3t.nn.fused._KernelProduct``): which batched-product shapes
are fast on this CPU, over the 19 3x3x3 Conv3T layers of GoogLeNet-3T (out, in as in the model).

    python benchmarks/kernel_product.py --rounds 15

Forward: ``cat(K, K @ C[1:]^T)`` (slice 0 copied, issue 20) against one product ``K @ C^T`` over all rows.
Gradient of the 2D filter: ``G C`` (``baddbmm`` with slice 0's gradient added, 9-wide output rows) against
``(C^T G^T)^T`` (the input channels last) plus the copy into the weight's layout. Interleaved rounds, medians of
process CPU time over all 19 layers, one thread; the machine may be shared, so compare within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

GOOGLENET_3X3 = [
    (192, 64), (128, 96), (32, 16), (192, 128), (96, 32), (208, 96), (48, 16), (224, 112), (64, 24), (256, 128),
    (64, 24), (288, 144), (64, 32), (320, 160), (128, 32), (320, 160), (128, 32), (384, 192), (128, 48),
]  # fmt: skip
P, D = 9, 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    layers = []
    for out, cin in GOOGLENET_3X3:
        stacked = torch.randn(out, D * P, P, generator=gen)
        stacked[:, :P] = torch.eye(P)
        layers.append((torch.randn(out, cin, P, generator=gen), stacked, torch.randn(out, cin, D * P, generator=gen)))

    def forward_cat() -> None:
        for flat, stacked, _ in layers:
            torch.cat((flat, torch.bmm(flat, stacked[:, P:].transpose(1, 2))), dim=2)

    def forward_one() -> None:
        for flat, stacked, _ in layers:
            torch.bmm(flat, stacked.transpose(1, 2))

    def filter_grad_baddbmm() -> None:
        for _, stacked, grad in layers:
            torch.baddbmm(grad[:, :, :P], grad[:, :, P:], stacked[:, P:])

    def filter_grad_transposed() -> None:
        for _, stacked, grad in layers:
            torch.bmm(stacked.transpose(1, 2), grad.transpose(1, 2)).transpose(1, 2).contiguous()

    fns = {
        "forward: copy + product + cat": forward_cat,
        "forward: one product": forward_one,
        "filter gradient: G C (baddbmm)": filter_grad_baddbmm,
        "filter gradient: (C^T G^T)^T + copy": filter_grad_transposed,
    }
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.process_time()
            fns[name]()
            times[name].append(time.process_time() - start)
    for name in names:
        print(f"{name:<40} {statistics.median(times[name]) * 1e3:7.2f} ms", flush=True)


if __name__ == "__main__":
    main()
