"""``conv3t explain``: write the static HTML explanation report of a trained model."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Library argument -> this command's flag, for error messages (the library names its arguments).
FLAGS: dict[str, str] = {
    "videos": "--video",
    "layers": "--layers",
    "channels": "--channels",
    "device": "--device",
    "max_memory": "--max-memory",
    "verify_textures": "--verify-textures",
    "faithfulness_draws": "--faithfulness-draws",
}


def flag_message(err: BaseException, flags: Mapping[str, str]) -> str:
    """``err``'s message with a leading library argument (``layers``, ``videos[2]``) replaced by its flag."""
    text = str(err)
    match = re.match(r"(\w+)(\[\d+\])?(?=[ :])", text)
    if match and match.group(1) in flags:
        return flags[match.group(1)] + text[match.end() :]
    return text


def _names(values: list[str] | None) -> list[str] | None:
    """Accept ``--layers a b`` and ``--layers a,b`` alike."""
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


def _channels(values: list[str] | None) -> list[int] | None:
    names = _names(values)
    if names is None:
        return None
    try:
        return [int(v) for v in names]
    except ValueError:
        raise ValueError(f"channels takes channel numbers, got {' '.join(values or [])}") from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="write an HTML report explaining what a trained model's temporal filters learned",
        description=(
            "Load an exported model (a run directory, or its model.safetensors / model.json) and write a static, "
            "offline report: model summary, Table 2 statistics, parameter distributions, then for the chosen "
            "layers their most strongly motion-tuned channels (measured with stimuli of known motion) with what "
            "they prefer, what their parameters say and whether the two agree, parameter plots and trajectory, "
            "filter slices (first layer), gradient saliency and activation maximisation; a section per video "
            "explaining its prediction as motion (also predictions.json); the verification of every layer. "
            "Prints the path of index.html."
        ),
    )
    parser.add_argument("run", metavar="RUN_DIR|WEIGHTS", help="run directory, model.safetensors or model.json")
    parser.add_argument("--out", required=True, type=Path, metavar="REPORT_DIR", help="folder for the report")
    parser.add_argument(
        "--video",
        nargs="+",
        action="extend",
        metavar="FILE",
        help="video files (any format PyAV reads) or folders of frame images to explain; default: a few clips "
        "of the run's own validation data",
    )
    parser.add_argument(
        "--layers",
        nargs="+",
        metavar="NAME",
        help="layer names (e.g. conv1 layer2.0.conv1); default: first, middle and last temporal layer",
    )
    parser.add_argument(
        "--channels", nargs="+", metavar="N", help="channels to show in every layer; default: the most transformed"
    )
    parser.add_argument("--top", type=int, default=3, metavar="K", help="channels per layer by default (3)")
    parser.add_argument("--clips", type=int, default=3, metavar="K", help="clips taken from the run's data (3)")
    parser.add_argument(
        "--actmax-steps", type=int, default=64, metavar="S", help="activation maximisation steps per layer (64)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of activation maximisation (0)")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="leave out the section that checks channels against stimuli of known motion (3T models)",
    )
    parser.add_argument(
        "--verify-textures",
        type=int,
        default=24,
        metavar="N",
        help="texture views per verification stimulus (24); e.g. 8 is 3x faster, each count then comes with a "
        "wider confidence interval (printed beside it)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="where the report is computed: auto (CUDA when available, else cpu), cpu, cuda or cuda:N",
    )
    parser.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget of the verification's batches, e.g. 4GB (default: 25%% of the available memory, "
        "at most 2GB, on a CPU; 80%% of the free memory on a GPU)",
    )
    parser.add_argument(
        "--no-faithfulness",
        action="store_true",
        help="leave out the faithfulness checks of the prediction explanations (channel ablation, frame "
        "deletion and insertion, Grad-CAM pixel deletion, weight randomisation)",
    )
    parser.add_argument(
        "--faithfulness-draws",
        type=int,
        default=19,
        metavar="N",
        help="the most random channel sets, frame orders and maps a Monte-Carlo faithfulness check draws (19: the "
        "fewest with which p = 1/(N+1) reaches alpha 0.05; frame checks of clips up to 10 frames are exact)",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from conv3t.explain.report import build_report  # loads torch, matplotlib and the models: not at CLI start

    for name in ("top", "clips"):
        if getattr(args, name) < 1:
            print(f"conv3t explain: error: --{name} must be >= 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    if args.actmax_steps < 0:
        print(f"conv3t explain: error: --actmax-steps must be >= 0, got {args.actmax_steps}", file=sys.stderr)
        return 2
    try:
        channels = _channels(args.channels)
        index = build_report(
            args.run,
            args.out,
            videos=args.video,
            layers=_names(args.layers),
            channels=channels,
            progress=not args.no_progress,
            num_clips=args.clips,
            num_channels=args.top,
            actmax_steps=args.actmax_steps,
            seed=args.seed,
            verify=not args.no_verify,
            verify_textures=args.verify_textures,
            device=args.device,
            max_memory=args.max_memory,
            faithfulness=not args.no_faithfulness,
            faithfulness_draws=args.faithfulness_draws,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"conv3t explain: error: {flag_message(err, FLAGS)}", file=sys.stderr)
        return 2
    print(index)
    return 0
