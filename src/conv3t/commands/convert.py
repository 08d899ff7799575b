"""``conv3t convert``: convert a torchvision or timm classifier and print the conversion report."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a torchvision/timm 2D classifier to a 3T or 3D video network and print the report",
        description=(
            "Build a 2D classifier (torchvision name, e.g. resnet50, or timm:NAME) with random weights, convert "
            "it with conv3t.models.convert, run the constant-clip equivalence check and print the conversion "
            "report: modules replaced, functional operations rewritten, parameters transferred, 2D/3T/3D "
            "parameter counts. Nothing is downloaded. Exit status 0 when the conversion and its check succeed, "
            "1 when the model cannot be converted (the message names the operation and module)."
        ),
    )
    parser.add_argument("model", help="torchvision model name (resnet50, convnext_tiny, ...) or timm:NAME")
    parser.add_argument("--kind", choices=("3t", "3d"), default="3t")
    parser.add_argument("--inflate", choices=("repeat", "mean"), default="mean")
    parser.add_argument("--time-kernel", type=int, default=3)
    parser.add_argument("--temporal-padding", choices=("zeros", "replicate"), default="replicate")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=112, help="images of the check (default 112)")
    parser.add_argument("--no-check", action="store_true", help="skip the equivalence check")
    parser.add_argument("--details", action="store_true", help="every module, operation and parameter")
    parser.set_defaults(func=run)


def _model_2d(name: str, classes: int) -> Any:
    if name.startswith("timm:"):
        import timm

        return timm.create_model(name[5:], pretrained=False, num_classes=classes)
    from conv3t.models.zoo import torchvision_2d

    return torchvision_2d(name, classes)


def run(args: argparse.Namespace) -> int:
    from conv3t.models import ConversionError, convert

    model = _model_2d(args.model, args.classes).eval()
    try:
        video = convert(
            model,
            args.kind,
            inflate=args.inflate,
            time_kernel=args.time_kernel,
            temporal_padding=args.temporal_padding,
            check=not args.no_check,
            image_size=args.image_size,
        )
    except ConversionError as err:
        print(f"conv3t convert: {err}")
        return 1
    print(video.conversion_report.summary())
    if args.details:
        print(video.conversion_report.details())
    return 0
