"""``conv3t demo [--out DIR] [--quick] [--no-report]``: synthetic motion -> 3TConv -> accuracy -> report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train a small 3TConv network on synthetic motion clips and explain it (a few minutes on a CPU)",
        description=(
            "Generate synthetic clips whose class is a motion, train a reduced 3TConv ResNet from scratch on the "
            "CPU, evaluate it and write summary.json, the weights and the explanation report into --out."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    p.add_argument("--quick", action="store_true", help="a few tiny clips and one epoch: checks the pipeline only")
    p.add_argument("--no-report", action="store_true", help="skip the explanation report")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, see docs/training.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from conv3t.train.demo import run_demo

    try:
        run_demo(args.out, quick=args.quick, report=not args.no_report, threads=args.threads)
    except FileExistsError as err:
        print(f"conv3t demo: {err}", file=sys.stderr)
        return 1
    return 0
