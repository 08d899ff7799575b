"""`conv3t verify` on the models trained by the experiments: pooled agreement per layer and motion type.

Runs :func:`conv3t.verify.verify_run` (both modes) on the exported 3TConv models of the experiments
(``--models motion``: scratch seed 0 and pretrained seeds 0-2 on the motion task; ``appearance``: pretrained
seeds 0-2 on the appearance task; trained first if their runs are not stored), stores each result under
``runs/experiments/verify/<run>-<code>``, and prints the agreement pooled over the models: agreeing /
counted channels per layer, motion type and mode.

Run:  python experiments/verify_trained.py [--models motion|appearance] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT, Setting, code_version, run_all

from conv3t.verify.network import VerifyConfig, verify_run
from conv3t.verify.report import write_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", choices=("motion", "appearance"), default="motion")
    parser.add_argument("--workers", type=int, default=1, help="training runs in parallel (if not stored)")
    parser.add_argument("--textures", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.models == "motion":
        settings = [Setting(task="motion", seed=0)] + [
            Setting(task="motion", pretrained="frames2d", seed=s) for s in range(3)
        ]
    else:
        settings = [Setting(task="appearance", pretrained="frames2d", seed=s) for s in range(3)]
    runs = [Path(r["run_dir"]) for r in run_all(settings, args.workers)]
    summaries = []
    for run_dir in runs:
        out = ROOT / "verify" / f"{run_dir.name}-t{args.textures}-{code_version()[:12]}"
        csv = out / "verification_summary.csv"
        if csv.is_file():
            summary = pd.read_csv(csv)
        else:
            result = verify_run(run_dir, VerifyConfig(textures=args.textures))
            write_outputs(result, out)
            summary = result.summary
        summary.insert(0, "model", run_dir.name)
        summaries.append(summary)
        print(f"[{time.perf_counter() - start:6.0f}s] {run_dir.name}", flush=True)
    allrows = pd.concat(summaries, ignore_index=True)
    cols = ["counted", "agree", "dominant_counted", "dominant_agree"]
    pooled = allrows.groupby(["mode", "layer", "motion"], sort=False)[cols].sum().reset_index()
    print(
        f"\nAgreeing / counted channels pooled over {len(runs)} models ({args.models} task); chance 25 % (translation)"
    )
    print("and 50 % (rotation, zoom)\n")
    layers = list(dict.fromkeys(pooled["layer"]))
    print("| layer | mode | translation | rotation | zoom |\n|---|---|---|---|---|")
    for layer in layers:
        for mode in ("image", "layer"):
            cells = []
            for motion in ("translation", "rotation", "zoom"):
                row = pooled[(pooled["layer"] == layer) & (pooled["mode"] == mode) & (pooled["motion"] == motion)]
                if row.empty:
                    cells.append("–")
                    continue
                n, a = int(row["counted"].iloc[0]), int(row["agree"].iloc[0])
                cell = f"{a}/{n} ({a / n:.0%})" if n else "0/0"
                if motion != "translation":
                    dn, da = int(row["dominant_counted"].iloc[0]), int(row["dominant_agree"].iloc[0])
                    cell += f"; dominant {da}/{dn}"
                cells.append(cell)
            print(f"| {layer} | {mode} | " + " | ".join(cells) + " |")
    rho = allrows.groupby(["mode", "layer", "motion"], sort=False)["speed_spearman"].mean().unstack("motion")
    print("\nMean over models of the speed rank correlation (predicted vs measured):\n")
    print(rho.round(2).to_markdown())
    print(f"\ntotal {time.perf_counter() - start:.0f} s (stored verifications are reused)")


if __name__ == "__main__":
    main()
