"""``conv3t verify RUN_DIR [--out DIR]``: do channels prefer the motion their temporal parameters say?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check each Conv3T channel's parameters against its measured motion preference",
        description=(
            "Drive every Conv3T channel of an exported model with textures of known translation, rotation and "
            "zoom, measure which motion each channel prefers, and report per layer and motion type how often "
            "that agrees with the motion its temporal parameters predict. Clips are streamed in batches sized "
            "to a memory budget (--max-memory)."
        ),
    )
    p.add_argument("run", type=Path, help="run directory (model.safetensors + model.json) or one of those files")
    p.add_argument(
        "--out", type=Path, default=None, help="write verification.json, CSV files and verification.html here"
    )
    p.add_argument(
        "--mode",
        choices=("image", "layer", "both"),
        default="both",
        help="image: stimuli move in the network input; layer: in each layer's own input (default: both)",
    )
    p.add_argument(
        "--textures",
        type=int,
        default=24,
        help="texture views per stimulus (default 24); fewer is faster and widens each agreement's confidence "
        "interval (printed)",
    )
    p.add_argument("--seed", type=int, default=0, help="texture seed")
    p.add_argument(
        "--layer-energies",
        choices=("exact", "sampled"),
        default="exact",
        help="layer mode: exact (default) computes each channel's expected response energy in closed form from "
        "its kernel (no sampling noise; --textures and --seed apply to image mode only); sampled renders "
        "--textures views of every stimulus and runs the layer on them",
    )
    p.add_argument(
        "--device", default="auto", help="auto (CUDA when available, else cpu; the default), cpu, cuda or cuda:N"
    )
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget of the batches, e.g. 4GB (default: 25%% of the available memory, at most 2GB, on a "
        "CPU; 80%% of the free memory on a GPU)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # torch and the models load here, not when ``conv3t --help`` starts; the page is explain's renderer
    from rich.console import Console
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from conv3t.explain.report import verification_page
    from conv3t.verify import VerifyConfig, format_summary, verify_run, write_outputs
    from conv3t.verify.progress import StageETA

    if args.textures < 1:
        print("conv3t verify: --textures must be >= 1", file=sys.stderr)
        return 2
    modes = ("image", "layer") if args.mode == "both" else (args.mode,)
    config = VerifyConfig(modes=modes, textures=args.textures, seed=args.seed, layer_energies=args.layer_energies)
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]conv3t verify[/]"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=args.no_progress,
    )
    task = bar.add_task("loading the model", total=None)
    try:
        with bar:
            result = verify_run(
                args.run,
                config=config,
                device=args.device,
                max_memory=args.max_memory,
                progress=StageETA(lambda text: bar.update(task, description=text)),
                notify=lambda text: console.print(text, markup=False, highlight=False),
            )
    except (FileNotFoundError, ValueError) as err:
        message = str(err).replace("device: ", "--device: ", 1).replace("max_memory: ", "--max-memory: ", 1)
        print(f"conv3t verify: {message}", file=sys.stderr)
        return 1
    print(format_summary(result))
    batches = [f"{m} mode {b}" for m, b in result.config["batch_sizes"].items()]
    if "layer" in modes and args.layer_energies == "exact":
        batches.append("layer mode none: closed form")
    batches = ", ".join(batches)
    print(
        f"\n{len(result.channels)} channel measurements in {result.seconds:.1f} s on {result.config['device']} "
        f"(batch size {batches}; memory budget {result.config['memory_budget']})"
    )
    if args.out is not None:
        paths = list(write_outputs(result, args.out).values())
        paths.append(verification_page(result, args.out))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0
