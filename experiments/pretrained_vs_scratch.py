"""Experiment 2 (paper Tables 3/4 vs 2): pretrained 3T vs 3T from scratch.

All runs go through the shipped trainer (``conv3t.train.run.train``); see ``_common.py``.
"Pretraining": a 2D network (the same reduced ResNet-10, base width 8) trained on single frames of the
appearance task, saved as a torchvision-style 2D state dict and transferred into the 3TConv ResNet-10 with the
library's 2D -> 3T transfer (``create_model(..., pretrained=PATH)``; temporal parameters start at the
identity). Pretrained and scratch 3T models are then trained with the same budget on both tasks; several
seeds (each seed pretrains its own 2D network). Reports validation accuracy and the spread of the temporal
parameters (x 10^-3).

Run:  python experiments/pretrained_vs_scratch.py [--seeds 0 1 2] [--inflate repeat|mean] [--workers 2]

``--inflate``: how the 2D filter becomes the 3T kernel (``repeat``: the paper's convention, the default;
``mean``: divided by the depth, so a static clip gives the 2D activations).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Setting, fmt, pretrained_2d, run_all
from task_spread import spread_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--inflate", choices=("repeat", "mean"), default="repeat")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel, one thread each")
    args = parser.parse_args()
    start = time.perf_counter()
    groups = {
        f"{task}, {'pretrained' if pre else 'scratch'}": [
            Setting(task=task, pretrained=pre, inflate=args.inflate if pre else "repeat", seed=seed)
            for seed in args.seeds
        ]
        for task in ("motion", "appearance")
        for pre in ("frames2d", None)
    }
    done = iter(run_all([s for group in groups.values() for s in group], args.workers))
    results = {name: [next(done) for _ in group] for name, group in groups.items()}
    pre = [
        json.loads(pretrained_2d(seed).with_suffix(".json").read_text())["val_acc_single_frame"] for seed in args.seeds
    ]
    print(f"\n2D pretraining on single appearance frames: val acc {fmt([a * 100 for a in pre])} %")
    transfer = [r["acc_at_transfer"] for r in results["appearance, pretrained"]]
    print(
        "appearance val acc in eval mode straight after the transfer: "
        f"inflate=repeat {fmt([t['repeat'] * 100 for t in transfer])} %, "
        f"inflate=mean {fmt([t['mean'] * 100 for t in transfer])} %\n"
    )
    print(f"inflate={args.inflate}\n")
    print("| | " + " | ".join(results) + " |\n|---|" + "---|" * len(results))
    print("| val acc % | " + " | ".join(fmt([r["val_acc"] * 100 for r in rs]) for rs in results.values()) + " |")
    print("\n".join(spread_rows(results)))
    print(f"\ntotal {time.perf_counter() - start:.0f} s (stored runs are reused)")


if __name__ == "__main__":
    main()
