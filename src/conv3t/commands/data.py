"""``conv3t data check``: scan a Jester or UCF101 dataset and report every problem at once."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect video datasets", description="Inspect video datasets.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="scan a dataset and list every problem",
        description=(
            "Scan a whole dataset in its official layout and list every problem with its file and line: "
            "missing or empty frame folders, gaps in frame numbering, unreadable or truncated JPEG/AVI files, "
            "annotation lines that do not parse, labels not in the labels file / classInd.txt. "
            "Exit status 1 if anything is wrong, else 0 with a summary."
        ),
    )
    check.add_argument("--dataset", required=True, choices=("jester", "ucf101"))
    check.add_argument("root", help="Jester: dataset folder; UCF101: folder of class folders (UCF-101)")
    check.add_argument(
        "--annotations",
        metavar="DIR",
        help="Jester: folder of jester-v1-*.csv (default ROOT); UCF101: folder of classInd.txt and split lists "
        "(default ROOT/../ucfTrainTestlist)",
    )
    check.add_argument("--frames", metavar="DIR", help="Jester: frames folder (default ROOT/20bn-jester-v1)")
    check.add_argument("--fold", type=int, choices=(1, 2, 3), action="append", help="UCF101 folds (default all)")
    check.add_argument(
        "--decode", action="store_true", help="decode every frame (slow; finds corrupt data inside files)"
    )
    check.add_argument("--workers", type=int, default=4, help="threads scanning in parallel (default 4)")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.set_defaults(func=run_check)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from conv3t.data.check import check_jester, check_ucf101

    root = Path(args.root)
    if not root.exists():
        print(f"conv3t data check: {root}: no such folder", file=sys.stderr)
        return 2
    progress = None
    if not args.no_progress and sys.stderr.isatty():
        from rich.progress import Progress

        progress = Progress(transient=True)
    state: dict = {}

    def on_start(n: int) -> None:
        if progress is not None:
            progress.start()
            state["task"] = progress.add_task(f"checking {n} videos", total=n)

    def on_video() -> None:
        if progress is not None:
            progress.advance(state["task"])

    try:
        if args.dataset == "jester":
            report = check_jester(
                root,
                args.annotations,
                args.frames,
                decode=args.decode,
                workers=args.workers,
                on_start=on_start,
                on_video=on_video,
            )
        else:
            ann = Path(args.annotations) if args.annotations else root.parent / "ucfTrainTestlist"
            report = check_ucf101(
                root,
                ann,
                tuple(args.fold or (1, 2, 3)),
                decode=args.decode,
                workers=args.workers,
                on_start=on_start,
                on_video=on_video,
            )
    finally:
        if progress is not None:
            progress.stop()
    print(report.format())
    return 0 if report.ok else 1
