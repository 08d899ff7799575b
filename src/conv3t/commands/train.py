"""``conv3t train CONFIG.yaml [--out DIR] [--resume] [--dry-run] [--section.key VALUE ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

EPILOG = """\
Any config key can be overridden with a dotted option, e.g.
  conv3t train configs/resnet18_3t_jester_imagenet.yaml --data.root /data/jester --trainer.max_epochs 3
  conv3t train configs/synthetic_motion_3t.yaml --optim.lr 0.01 --trainer.accelerator gpu --trainer.devices 2
Values are YAML: 3, 0.01, true, null, [150, 224]. Resume an interrupted run with the same --out and --resume.
Check a job before queueing it: --dry-run prints the resolved config, the data check, the model and its
parameter count, steps per epoch and the output folder, then exits (status 1 if the data check fails).
A SLURM job requeued by Lightning (sbatch --signal=SIGUSR1@90) continues from OUT/hpc_ckpt_N.ckpt by itself.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML config (checkpoints, logs, exported weights)",
        description="Train a video classifier described by a YAML config with Lightning.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", type=Path, help="experiment config (see configs/)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument(
        "--dry-run", action="store_true", help="check data, model and settings, print them and exit without training"
    )
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="config overrides: --section.key VALUE ...")
    p.set_defaults(func=run)
    plain_help = p.format_help
    # The override options are listed from the config schema, which imports Lightning (seconds): only when the
    # help is shown, not whenever `conv3t` builds its parser.
    p.format_help = lambda: _with_override_options(plain_help)  # type: ignore[method-assign]


def _with_override_options(plain_help: Callable[[], str]) -> str:
    """The help text followed by every ``--section.key`` of the schema, its type, default and allowed values."""
    from conv3t.train.config import override_keys

    lines = ["", "config keys (override any with --KEY VALUE; data.* takes the dataset kind's options, trainer.* any",
             "lightning.Trainer argument, model.kwargs.* the model's keyword arguments):"]  # fmt: skip
    width = max(len(k.dotted) for k in override_keys()) + 4
    lines += [f"  --{k.dotted:<{width}}{k.help()}" for k in override_keys()]
    return plain_help() + "\n".join(lines) + "\n"


def split_options(tokens: list[str], flags: tuple[str, ...], valued: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Pull ``flags`` (no value) and ``valued`` options out of ``tokens`` (argparse puts every token after the
    first override there); returns ``({name: value}, remaining tokens)``."""
    found: dict[str, object] = {}
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name, _, inline = tok.partition("=")
        if name in flags and not inline:
            found[name] = True
            i += 1
        elif name in valued:
            if inline:
                found[name] = inline
                i += 1
            elif i + 1 < len(tokens):
                found[name] = tokens[i + 1]
                i += 2
            else:
                raise ValueError(f"{name} needs a value")
        else:
            rest.append(tok)
            i += 1
    return found, rest


def run(args: argparse.Namespace) -> int:
    from conv3t.data.errors import DataError
    from conv3t.train.checkpoint import CheckpointError
    from conv3t.train.config import ConfigError, load_config, parse_override_args
    from conv3t.train.run import RunDirError, train

    try:
        found, tokens = split_options(list(args.overrides or []), ("--resume", "--dry-run"), ("--out",))
        if "--out" in found:
            args.out = Path(str(found["--out"]))
        args.resume = bool(args.resume or found.get("--resume"))
        args.dry_run = bool(getattr(args, "dry_run", False) or found.get("--dry-run"))
        overrides = parse_override_args(tokens)
        config = load_config(args.config, overrides)
    except (ConfigError, ValueError) as err:
        print(f"conv3t train: {err}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else Path("runs") / args.config.stem
    if args.dry_run:
        from conv3t.train.dry_run import dry_run

        report = dry_run(config, out, resume=args.resume)
        print(report.text, file=sys.stdout if report.ok else sys.stderr)
        return 0 if report.ok else 1
    try:
        result = train(config, out, resume=args.resume)
    except (RunDirError, CheckpointError, ConfigError) as err:
        print(f"conv3t train: {err}", file=sys.stderr)
        return 1
    except (DataError, FileNotFoundError) as err:  # a dataset file missing or unreadable (the message names it)
        print(f"conv3t train: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if not result.is_global_zero:  # the other processes of a multi-process run: rank 0 reports
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(f"interrupted; resume with: conv3t train {args.config} --out {out} --resume", file=sys.stderr)
        return 130
    m = result.metrics
    print(
        f"done in {result.train_seconds:.0f} s: val top-1 {m.get('val/top1', float('nan')):.4f}, "
        f"top-5 {m.get('val/top5', float('nan')):.4f}, mean class {m.get('val/mean_class_acc', float('nan')):.4f}\n"
        f"run directory: {out}  (model.safetensors, metrics.json, confusion_matrix.png, checkpoints/, logs/)"
    )
    return 0
