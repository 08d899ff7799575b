"""``conv3t params``: Table 1 of the paper (parameter counts), computed live from the models; ``--all``: parameter
counts and FLOPs per clip of every registered family, 2D / 3T / 3D."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DATASETS: tuple[tuple[str, int], ...] = (("Jester", 27), ("UCF101", 101))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "params",
        help="parameter counts of the paper's four models (Table 1), computed live",
        description=(
            "Build the four models of the paper (3T/3D ResNet18 and GoogLeNet, auxiliary heads included) for "
            "Jester (27 classes) and UCF101 (101 classes), count their parameters and compare with Table 1 of "
            "the paper. Exit status 0 when every count matches, 1 otherwise."
        ),
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every registered family (the converted torchvision ones too): parameters and GFLOPs per clip, "
        "2D / 3T / 3D (takes a minute: each family is converted on the meta device)",
    )
    parser.add_argument("--frames", type=int, default=16, help="--all: clip length (default 16)")
    parser.add_argument("--size", type=int, default=112, help="--all: frame height and width (default 112)")
    parser.add_argument("--classes", type=int, default=27, help="--all: classifier size (default 27, Jester)")
    parser.set_defaults(func=run)


def table_rows() -> list[dict[str, Any]]:
    """One row per model and dataset: name, dataset, classes, computed and paper counts, temporal parameters.

    The models are built on PyTorch's ``meta`` device: shapes only, no memory and no initialisation cost.
    """
    import torch

    from conv3t.models import PAPER_PARAMETER_COUNTS, count_parameters, create_model
    from conv3t.nn import conv3t_layers

    rows = []
    for name, paper in PAPER_PARAMETER_COUNTS.items():
        for dataset, classes in DATASETS:
            with torch.device("meta"):
                model = create_model(name, classes, aux_logits=True)
            temporal = sum(p.numel() for _, layer in conv3t_layers(model) for p in layer.temporal_parameters().values())
            rows.append(
                {
                    "model": name,
                    "dataset": dataset,
                    "classes": classes,
                    "computed": count_parameters(model),
                    "paper": paper[classes],
                    "temporal": temporal,
                }
            )
    return rows


def _marks() -> tuple[str, str]:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "yes", "NO"
    return "✓", "✗"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`table_rows`."""
    ok, bad = _marks()
    header = ("model", "dataset (classes)", "computed", "paper", "match", "of which 3T temporal")
    body = [
        (
            r["model"],
            f"{r['dataset']} ({r['classes']})",
            f"{r['computed']:,}",
            f"{r['paper']:,}",
            ok if r["computed"] == r["paper"] else bad,
            f"{r['temporal']:,}" if r["temporal"] else "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    right = {2, 3, 5}

    def fmt(line: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])


def format_costs(rows: list[Any]) -> str:
    """Plain-text table of :func:`conv3t.models.costs.family_costs` rows."""
    header = ("family", "params 2D", "3T", "3D", "GFLOPs/clip 2D", "3T", "3D")
    body = [
        (
            r.family + (" (paper)" if r.in_paper else ""),
            f"{r.params_2d:,}",
            f"{r.params_3t:,}",
            f"{r.params_3d:,}",
            f"{r.flops_2d / 1e9:.2f}",
            f"{r.flops_3t / 1e9:.2f}",
            f"{r.flops_3d / 1e9:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def fmt(line: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])


def run_all(args: argparse.Namespace) -> int:
    from conv3t.models.costs import family_costs

    rows = family_costs(frames=args.frames, size=args.size, classes=args.classes)
    print(
        f"Parameters and forward GFLOPs per clip of {args.frames} x {args.size} x {args.size}, {args.classes} "
        f"classes (2D: the 2D network on every frame; FLOPs = 2 x multiply-accumulates of convolutions and "
        f"matrix products, eval mode)"
    )
    print(format_costs(rows))
    print(
        "\n3T/3D of converted families: temporal depth 3, stride 1 in time; the paper's models stride in time "
        "(conv1 7x7x7 / 2, ...), which is why their 3D FLOPs are not 3x the 2D ones."
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "all", False):
        return run_all(args)
    rows = table_rows()
    print("Table 1 of Ras et al.: number of model parameters (GoogLeNet with both auxiliary heads)")
    print(format_table(rows))
    matched = sum(r["computed"] == r["paper"] for r in rows)
    print(f"\n{matched}/{len(rows)} counts match the paper.")
    return 0 if matched == len(rows) else 1
