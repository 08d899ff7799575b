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
            "that agrees with the motion its temporal parameters predict."
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
    p.add_argument("--textures", type=int, default=24, help="texture views per stimulus (default 24)")
    p.add_argument("--seed", type=int, default=0, help="texture seed")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # torch and the models load here, not when ``conv3t --help`` starts; the page is explain's renderer
    from conv3t.explain.report import verification_page
    from conv3t.verify import VerifyConfig, format_summary, verify_run, write_outputs

    if args.textures < 1:
        print("conv3t verify: --textures must be >= 1", file=sys.stderr)
        return 2
    modes = ("image", "layer") if args.mode == "both" else (args.mode,)
    config = VerifyConfig(modes=modes, textures=args.textures, seed=args.seed)
    try:
        result = verify_run(args.run, config=config, device=args.device)
    except (FileNotFoundError, ValueError) as err:
        print(f"conv3t verify: {err}", file=sys.stderr)
        return 1
    print(format_summary(result))
    print(f"\n{len(result.channels)} channel measurements in {result.seconds:.1f} s")
    if args.out is not None:
        paths = list(write_outputs(result, args.out).values())
        paths.append(verification_page(result, args.out))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0
