"""``conv3t import-authors CKPT --arch ARCH --classes N|--labels FILE --out RUN``: an authors' checkpoint as a run.

Reads a state dict written by the authors' research code (redsphinx/3tconv, ``epoch_N`` files) with
:func:`conv3t.models.load_authors_checkpoint` and writes an exported run (``model.safetensors`` +
``model.json``) that ``conv3t explain RUN`` and ``conv3t eval RUN`` read like one trained here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from conv3t.commands.eval import load_data_section

ARCHS: tuple[str, ...] = ("resnet18_3t", "resnet18_3d", "googlenet_3t", "googlenet_3d")

EPILOG = """\
Their clips: 30 frames of the stored frames (150 x 224 for Jester, 168 x 224 for UCF101), pixels / 255 then
ImageNet mean and std (running/training.py), which model.json records. Their training code subtracts 1 from
the Jester labels of its file lists (not public); if those number the lines of jester-v1-labels.csv from 1, that
file is the --labels to give (check a few predictions: the class order is not in their code).
Example:
  conv3t import-authors models/experiment_31_model_20_run_0/epoch_13 --arch resnet18_3t \\
      --labels /data/jester/jester-v1-labels.csv --out runs/authors_e31 \\
      --data configs/paper/resnet18_3t_jester_imagenet.yaml
  conv3t eval runs/authors_e31 --protocol paper
  conv3t explain runs/authors_e31 --out reports/authors_e31
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "import-authors",
        help="turn a checkpoint of the authors' code (redsphinx/3tconv) into a run that explain and eval read",
        description=(
            "Import a state dict saved by the authors' research code (their layer names, ConvTTN3d parameters, "
            "their GoogLeNet's pooling and BatchNorm settings) and write model.safetensors + model.json. The "
            "file is read with torch.load(weights_only=True): no code in it runs."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, metavar="CKPT", help="their epoch_N file")
    p.add_argument("--arch", required=True, choices=ARCHS, help="which of their networks the file holds")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--classes", type=int, metavar="N", help="number of classes (names class_0 .. class_N-1)")
    group.add_argument("--labels", type=Path, metavar="FILE", help="class names, one per line, in their order")
    p.add_argument("--out", required=True, type=Path, metavar="RUN", help="run directory to write")
    p.add_argument("--frames", type=int, default=30, help="frames per clip the model was trained on (30)")
    p.add_argument("--size", type=int, nargs=2, default=(150, 224), metavar=("H", "W"), help="frame size (150 224)")
    p.add_argument("--data", type=Path, default=None, help="YAML whose data section is recorded for eval/explain")
    p.add_argument("--force", action="store_true", help="overwrite an existing model.safetensors in RUN")
    p.set_defaults(func=run)


def read_labels(path: Path) -> list[str]:
    """Class names, one per non-empty line (a trailing ``,``-separated field is kept whole)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--labels {path}: cannot read ({err})") from err
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise ValueError(f"--labels {path}: no class names")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"--labels {path}: repeated class names {duplicates[:5]}")
    return names


def run(args: argparse.Namespace) -> int:
    import warnings

    from conv3t.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from conv3t.exported import INFO_FILE, WEIGHTS_FILE, ModelInfo, save_exported
    from conv3t.files import atomic_write
    from conv3t.models import load_authors_checkpoint

    try:
        classes = read_labels(args.labels) if args.labels else [f"class_{i}" for i in range(args.classes)]
        if args.frames < 1 or min(args.size) < 1:
            raise ValueError(f"--frames and --size must be positive, got {args.frames} and {tuple(args.size)}")
        if (args.out / WEIGHTS_FILE).exists() and not args.force:
            raise ValueError(f"--out {args.out} already holds {WEIGHTS_FILE}; pass --force to overwrite it")
        data = load_data_section(args.data) if args.data is not None else {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_authors_checkpoint(args.checkpoint, args.arch, num_classes=len(classes))
    except (ValueError, FileNotFoundError) as err:
        print(f"conv3t import-authors: error: {err}", file=sys.stderr)
        return 2
    for warning in caught:
        print(f"conv3t import-authors: warning: {warning.message}", file=sys.stderr)
    report = model.import_report
    info = ModelInfo(
        model=args.arch,
        num_classes=len(classes),
        classes=classes,
        num_frames=args.frames,
        size=(args.size[0], args.size[1]),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        model_kwargs={"style": "authors"} if args.arch.startswith("googlenet") else {},
        data=data,
    )
    save_exported(model.float(), args.out, info)
    record = {
        "source": str(args.checkpoint),
        "arch": args.arch,
        "tensors_mapped": report.mapped,
        "stale_kernel_tolerance": report.tolerance,
        "stale_kernel_relative_difference": report.stale,
        "kept_initial_value": report.defaults,
    }
    atomic_write(args.out / "authors_import.json", json.dumps(record, indent=2) + "\n")
    print(str(report), file=sys.stderr)
    print(f"wrote {args.out / WEIGHTS_FILE} and {args.out / INFO_FILE}", file=sys.stderr)
    print(args.out)
    return 0
