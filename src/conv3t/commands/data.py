"""``conv3t data check``: scan a dataset on disk and report every problem at once.

Either the data section of a training config (any registered dataset kind)::

    conv3t data check --config my_video_list.yaml

or Jester / UCF101 in their official layout::

    conv3t data check --dataset jester|ucf101 ROOT [--annotations DIR] [--frames DIR] [--fold N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect video datasets", description="Inspect video datasets.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="scan a dataset and list every problem",
        description=(
            "Scan a whole dataset and list every problem with its file and line: list or annotation lines that "
            "do not parse, labels not in the class list, missing or empty frame folders, missing frames, gaps in "
            "frame numbering, unreadable or truncated JPEG and video files; then name the folders/files on disk "
            "that no list names. Give a training config (--config, any dataset kind) or a Jester / UCF101 root. "
            "Exit status 1 if anything is wrong, 2 for bad arguments, else 0 with a summary."
        ),
    )
    check.add_argument("--config", metavar="CONFIG.yaml", type=Path, help="check the data section of this config")
    check.add_argument("--dataset", choices=("jester", "ucf101"), help="with ROOT: an official Jester / UCF101 layout")
    check.add_argument("root", nargs="?", help="Jester: dataset folder; UCF101: folder of class folders (UCF-101)")
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


def _data_section(path: Path) -> dict[str, Any]:
    """The ``data:`` mapping of a config file (or the file itself when it is a bare data section)."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ValueError(f"{path}: cannot read config ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    section = loaded.get("data", loaded) if isinstance(loaded, dict) else None
    if not isinstance(section, dict) or "dataset" not in section:
        raise ValueError(f"{path}: no data section with a 'dataset' key")
    return section


def _run(args: argparse.Namespace, on_start: Any, on_video: Any) -> Any:
    """The :class:`~conv3t.data.scan.CheckReport` the arguments ask for."""
    from conv3t.data.check import check_data_config, check_jester, check_ucf101

    kwargs = {"decode": args.decode, "workers": args.workers, "on_start": on_start, "on_video": on_video}
    if args.config is not None:
        section = _data_section(args.config)
        try:
            return check_data_config(section, **kwargs)
        except ValueError as err:  # a bad key or value of the section: name the file
            raise ValueError(f"{args.config}: {err}") from None
    root = Path(args.root)
    official = {  # the official layouts' own arguments; every other kind is checked through --config
        "jester": lambda: check_jester(root, args.annotations, args.frames, **kwargs),
        "ucf101": lambda: check_ucf101(
            root,
            Path(args.annotations) if args.annotations else root.parent / "ucfTrainTestlist",
            tuple(args.fold or (1, 2, 3)),
            **kwargs,
        ),
    }
    return official[args.dataset]()


def run_check(args: argparse.Namespace) -> int:
    if (args.config is None) == (args.dataset is None):
        print("conv3t data check: give --config CONFIG.yaml, or --dataset jester|ucf101 ROOT", file=sys.stderr)
        return 2
    if args.dataset is not None:
        if args.root is None:
            print(f"conv3t data check: --dataset {args.dataset} needs ROOT", file=sys.stderr)
            return 2
        if not Path(args.root).exists():
            print(f"conv3t data check: {args.root}: no such folder", file=sys.stderr)
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
        report = _run(args, on_start, on_video)
    except ValueError as err:
        print(f"conv3t data check: {err}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.stop()
    print(report.format())
    return 0 if report.ok else 1
