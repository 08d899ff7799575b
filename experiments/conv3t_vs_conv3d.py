"""Experiment 3 (paper Table 1): 3TConv vs 3DConv at equal budget -- accuracy and parameter count.

The reduced ResNet-10 (base width 8) with 3TConv layers and with ordinary Conv3d layers, trained by the shipped
trainer (``conv3t.train.run.train``) with the same
data, epochs, batch size and learning rate on both synthetic tasks, from scratch and from the same 2D
single-frame pretraining (see ``pretrained_vs_scratch.py``; kernels are inflated by repeating the 2D filter
over time, as the paper's code, or with ``--inflate mean`` divided by the depth); several seeds.

Run:  python experiments/conv3t_vs_conv3d.py [--seeds 0 1 2] [--no-pretrained] [--inflate repeat|mean] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Setting, fmt, run_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-pretrained", action="store_true", help="only the scratch comparison")
    parser.add_argument("--inflate", choices=("repeat", "mean"), default="repeat")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel, one thread each")
    args = parser.parse_args()
    start = time.perf_counter()
    inits = (None,) if args.no_pretrained else (None, "frames2d")
    groups = {
        (pre, model, task): [
            Setting(task=task, model=model, pretrained=pre, inflate=args.inflate if pre else "repeat", seed=seed)
            for seed in args.seeds
        ]
        for pre in inits
        for model in ("resnet10_3t", "resnet10_3d")
        for task in ("motion", "appearance")
    }
    done = iter(run_all([s for group in groups.values() for s in group], args.workers))
    results = {key: [next(done) for _ in group] for key, group in groups.items()}
    print(
        f"\nValidation accuracy %, {len(args.seeds)} seeds (mean ± std); 9 classes per task; inflate={args.inflate}\n"
    )
    print("| model | motion task (Jester-like) | appearance task (UCF101-like) | # params |\n|---|---|---|---|")
    for pre in inits:
        for model in ("resnet10_3t", "resnet10_3d"):
            cells = [
                fmt([r["val_acc"] * 100 for r in results[(pre, model, task)]]) for task in ("motion", "appearance")
            ]
            params = results[(pre, model, "motion")][0]["params"]
            print(f"| {'pret. ' if pre else 'scratch '}{model} | {cells[0]} | {cells[1]} | {params:,} |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s (stored runs are reused)")


if __name__ == "__main__":
    main()
