"""Multiply-adds of kernel generation against those of the convolutions, per network and clip (a count, no timing).

For every Conv3T of the model (its output size measured by one forward on the clip): the convolution's
multiply-adds for forward, input gradient and weight gradient (``3 * out * in/g * D*kH*kW * positions``)
and generation's (``3 * out * in/g * (D-1) * P * taps``: the kernel product forward and its two backward
products, slice 0 copied; ``taps`` = ``P`` for the dense forms, 4 for the ``sparse`` one; the sampling
matrices themselves are left out). Lists the layers where generation costs more than the convolution.

    .venv/bin/python benchmarks/generation_macs.py                      # small clip 2x16x32x32
    .venv/bin/python benchmarks/generation_macs.py --clip 1 30 150 224  # the paper's Jester clip
"""

from __future__ import annotations

import argparse

import torch

from conv3t import Conv3T
from conv3t.models import create_model
from conv3t.nn.functional import resolve_method


def count(name: str, clip: tuple[int, int, int, int]) -> dict[str, object]:
    model = create_model(name, num_classes=27).eval()
    seen: list[tuple[str, torch.nn.Module, torch.Size]] = []
    names = {module: n for n, module in model.named_modules()}
    hooks = [
        m.register_forward_hook(lambda mod, _, out: seen.append((names[mod], mod, out.shape)))
        for m in model.modules()
        if isinstance(m, Conv3T | torch.nn.Conv3d)
    ]
    with torch.no_grad():
        model(torch.randn(clip[0], 3, *clip[1:]))
    for h in hooks:
        h.remove()
    conv = conv3t = gen = 0
    heavier = []
    for layer_name, mod, shape in seen:
        depth, kh, kw = mod.kernel_size
        cin = mod.in_channels // mod.groups
        positions = shape[0] * shape[2] * shape[3] * shape[4]
        macs = 3 * mod.out_channels * cin * depth * kh * kw * positions
        conv += macs
        if isinstance(mod, Conv3T) and depth > 1:
            conv3t += macs
            taps = 4 if resolve_method(mod.kernel_method, cin, kh, kw) == "sparse" else kh * kw
            g = 3 * mod.out_channels * cin * (depth - 1) * kh * kw * taps
            gen += g
            if g > macs:
                heavier.append(f"{layer_name} ({positions} positions)")
    return {"conv_G": conv / 1e9, "conv3t_G": conv3t / 1e9, "generation_G": gen / 1e9, "heavier": heavier}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet18_3t", "googlenet_3t"])
    ap.add_argument("--clip", nargs=4, type=int, default=[2, 16, 32, 32], metavar=("N", "T", "H", "W"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.models:
        c = count(name, tuple(args.clip))
        print(
            f"{name} {args.clip}: convolutions {c['conv_G']:.3f} GMAC (3T layers {c['conv3t_G']:.3f}); generation "
            f"{c['generation_G']:.3f} GMAC = {c['generation_G'] / c['conv_G']:.1%}; generation > convolution in "
            f"{len(c['heavier'])} layers: {', '.join(c['heavier'])}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
