"""``conv3t compare``: several runs side by side — the Fig. 4/5 distribution grid and Table 2/4."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def flag_message(err: BaseException, flags: Mapping[str, str]) -> str:
    """``err``'s message with a leading library argument (``names``, ``runs``) replaced by its flag."""
    text = str(err)
    match = re.match(r"(\w+)(\[\d+\])?(?=[ :])", text)
    if match and match.group(1) in flags:
        return flags[match.group(1)] + text[match.end() :]
    return text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare the temporal parameters of several runs (Figs. 4/5, Tables 2/4)",
        description=(
            "Load several exported 3T models and write an HTML page with their statistics table (mean / std of "
            "|s-1|, |r|, |t_x|, |t_y|, x10^-3, also as Markdown, LaTeX and CSV) and a models x datasets grid of "
            "parameter distributions with identical axes. Prints the path of index.html."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (or model.safetensors files)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--names", nargs="+", metavar="NAME", help="one label per run (default: model names)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from conv3t.explain.report import build_comparison  # loads torch, matplotlib and the models: not at CLI start

    try:
        index = build_comparison(args.runs, args.out, names=args.names)
    except (ValueError, FileNotFoundError) as err:
        message = flag_message(err, {"names": "--names", "runs": "RUN_DIR"})
        print(f"conv3t compare: error: {message}", file=sys.stderr)
        return 2
    print(index)
    return 0
