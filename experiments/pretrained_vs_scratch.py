"""Experiment 2 (paper Tables 3/4 vs 2): pretrained 3T vs 3T from scratch.

"Pretraining": a 2D network (the same reduced ResNet-10, base width 8) trained on single frames of the
appearance task, saved as a torchvision-style 2D state dict and transferred into the 3TConv ResNet-10 with the
library's 2D -> 3T transfer (``create_model(..., pretrained=PATH)``; temporal parameters start at the
identity). Pretrained and scratch 3T models are then trained with the same budget on both tasks; several
seeds (each seed pretrains its own 2D network). Reports validation accuracy and the spread of the temporal
parameters (x 10^-3).

Run:  python experiments/pretrained_vs_scratch.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import Setting, fmt, pretrained_2d, run
from task_spread import spread_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results: dict[str, list[dict]] = {}
    pre_acc = []
    for seed in args.seeds:
        path = pretrained_2d(seed, Setting(seed=seed))
        pre_acc.append(json.loads(path.with_suffix(".json").read_text())["val_acc"])
    for task in ("motion", "appearance"):
        for pre in ("frames2d", None):
            name = f"{task}, {'pretrained' if pre else 'scratch'}"
            results[name] = []
            for seed in args.seeds:
                r = run(Setting(task=task, pretrained=pre, seed=seed))
                results[name].append(r)
                print(f"[{time.perf_counter() - start:6.0f}s] {name} seed {seed}: {r['val_acc']:.3f}", flush=True)
    print(f"\n2D pretraining on single appearance frames: val acc {fmt([a * 100 for a in pre_acc])} %\n")
    print("| | " + " | ".join(results) + " |\n|---|" + "---|" * len(results))
    print("| val acc % | " + " | ".join(fmt([r["val_acc"] * 100 for r in rs]) for rs in results.values()) + " |")
    print("\n".join(spread_rows(results)))
    print(f"\ntotal {time.perf_counter() - start:.0f} s (stored runs are reused)")


if __name__ == "__main__":
    main()
