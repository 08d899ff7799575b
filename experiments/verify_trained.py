"""`conv3t verify` on the models trained by the experiments: pooled agreement per layer and motion type.

Runs :func:`conv3t.verify.verify_run` (both modes) on every exported 3TConv model under
``runs/experiments/models`` whose name matches ``--pattern`` (train them first with ``task_spread.py`` and
``pretrained_vs_scratch.py``), stores each result under ``runs/experiments/verify/<model>``, and prints the
agreement pooled over the models: agreeing / counted channels per layer, motion type and mode.

Run:  python experiments/verify_trained.py [--pattern "motion_resnet10_3t_*_n1800_s?"]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT

from conv3t.verify.network import VerifyConfig, verify_run
from conv3t.verify.report import write_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pattern", default="motion_resnet10_3t_*_n1800_s?")
    parser.add_argument("--textures", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    runs = sorted(p for p in (ROOT / "models").glob(args.pattern) if (p / "model.json").is_file())
    if not runs:
        raise SystemExit(f"no exported model matches {ROOT / 'models' / args.pattern}; run the experiments first")
    summaries = []
    for run_dir in runs:
        out = ROOT / "verify" / run_dir.name
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
    print(f"\nAgreeing / counted channels pooled over {len(runs)} models ({args.pattern}); chance 25 % (translation)")
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
