"""Experiment 3 (paper Table 1): 3TConv vs 3DConv at equal budget -- accuracy and parameter count.

The reduced ResNet-10 (base width 8) with 3TConv layers and with ordinary Conv3d layers, trained with the same
data, epochs, batch size and learning rate on both synthetic tasks, from scratch and from the same 2D
single-frame pretraining (see ``pretrained_vs_scratch.py``; 3D kernels are inflated by repeating the 2D filter
over time, as the paper's code); several seeds.

Run:  python experiments/conv3t_vs_conv3d.py [--seeds 0 1 2] [--no-pretrained]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import Setting, fmt, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-pretrained", action="store_true", help="only the scratch comparison")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    inits = (None,) if args.no_pretrained else (None, "frames2d")
    rows = []
    for pre in inits:
        for model in ("resnet10_3t", "resnet10_3d"):
            cells = {}
            params = None
            for task in ("motion", "appearance"):
                accs = []
                for seed in args.seeds:
                    r = run(Setting(task=task, model=model, pretrained=pre, seed=seed))
                    accs.append(r["val_acc"] * 100)
                    params = r["params"]
                    print(
                        f"[{time.perf_counter() - start:6.0f}s] {model} {pre or 'scratch'} {task} {seed}: "
                        f"{r['val_acc']:.3f}",
                        flush=True,
                    )
                cells[task] = fmt(accs)
            rows.append((f"{'pret. ' if pre else 'scratch '}{model}", cells["motion"], cells["appearance"], params))
    print(f"\nValidation accuracy %, {len(args.seeds)} seeds (mean ± std); 9 classes per task\n")
    print("| model | motion task (Jester-like) | appearance task (UCF101-like) | # params |\n|---|---|---|---|")
    for name, motion, appearance, params in rows:
        print(f"| {name} | {motion} | {appearance} | {params:,} |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s (stored runs are reused)")


if __name__ == "__main__":
    main()
