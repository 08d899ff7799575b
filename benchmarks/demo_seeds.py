"""``conv3t demo --seed S`` with the CPU time of each stage (BENCHMARKS.md, "Demo across seeds").

    python benchmarks/demo_seeds.py --out /tmp/demo-seeds --seeds 0 1 2

Runs the demo in this process once per seed (one after the other, each into ``OUT/sS``) and prints one JSON
line per seed: validation top-1, recall of ``rotate_cw`` / ``rotate_ccw`` (from ``confusion_matrix.csv``),
this process's CPU seconds for the whole run, for training (rendering the clips included) and for the
report, the wall-clock seconds, and the load average at start and end. CPU seconds of the one torch thread
are what a quiet machine's wall clock approaches; the wall clock counts other jobs on the machine too.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _timed(store: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            store[f"{name}_cpu_s"] = round(time.process_time() - cpu, 1)
            store[f"{name}_wall_s"] = round(time.perf_counter() - wall, 1)

    return wrapper


def _recall(out: Path, classes: tuple[str, ...]) -> dict[str, float]:
    rows = list(csv.reader((out / "confusion_matrix.csv").open()))
    header, body = rows[0], {r[0]: [int(float(x)) for x in r[1:]] for r in rows[1:]}
    return {c: body[c][header.index(c) - 1] / sum(body[c]) for c in classes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="parent folder; each seed goes to OUT/sS")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    import conv3t.explain.report as report
    import conv3t.train.run as run
    from conv3t.commands.demo import run_demo

    for seed in args.seeds:
        stages: dict[str, float] = {}
        # run_demo imports these two at call time, so the wrappers are what it calls
        report.build_report = _timed(stages, "report", report.build_report)
        run.train = _timed(stages, "train", run.train)
        load, cpu, wall = os.getloadavg(), time.process_time(), time.perf_counter()
        out = args.out / f"s{seed}"
        summary = run_demo(out, seed=seed)
        row = {
            "seed": seed,
            "val_top1": summary["val_top1"],
            **_recall(out, ("rotate_cw", "rotate_ccw")),
            "cpu_s": round(time.process_time() - cpu, 1),
            "wall_s": round(time.perf_counter() - wall, 1),
            **stages,
            "load_start": [round(x, 2) for x in load],
            "load_end": [round(x, 2) for x in os.getloadavg()],
        }
        report.build_report, run.train = report.build_report.__wrapped__, run.train.__wrapped__
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
