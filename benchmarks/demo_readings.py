"""Two sets of ``benchmarks/demo_seeds.py`` runs side by side: accuracy and the report's readings per seed.

    .venv/bin/python benchmarks/demo_readings.py /tmp/demo-main /tmp/demo-branch --seeds 0 1 2

For each seed (``DIR/sS``): validation top-1 (``summary.json``) and, from ``report/verification_summary.csv``,
per verification mode and motion the channels tuned and the channels whose tuning agrees with their
parameters, summed over layers. Also whether the two runs' weights are bitwise equal.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path


def readings(run: Path) -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    with (run / "report" / "verification_summary.csv").open() as f:
        for row in csv.DictReader(f):
            key = f"{row['mode']}/{row['motion']}"
            totals[key][0] += int(row["tuned"])
            totals[key][1] += int(row["agree"])
    return {k: (v[0], v[1]) for k, v in sorted(totals.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    for seed in args.seeds:
        runs = [d / f"s{seed}" for d in (args.a, args.b)]
        top1 = [json.loads((r / "summary.json").read_text())["val_top1"] for r in runs]
        same = len({hashlib.sha256((r / "model.safetensors").read_bytes()).hexdigest() for r in runs}) == 1
        print(f"seed {seed}: val top-1 {top1[0]:.4f} | {top1[1]:.4f}; weights bitwise equal: {same}")
        ra, rb = (readings(r) for r in runs)
        for key in sorted(set(ra) | set(rb)):
            a, b = ra.get(key, (0, 0)), rb.get(key, (0, 0))
            mark = "" if a == b else "   <- differs"
            print(f"   {key:<22} tuned/agree {a[0]:3d}/{a[1]:3d} | {b[0]:3d}/{b[1]:3d}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
