"""``conv3t explain``: write the static HTML explanation report of a trained model.

The flags are generated from :class:`conv3t.explain.report.options.ReportOptions` (each field's metadata holds
its flag and help; the default and the check are the field's), and an error the report raises names a field
(:class:`~conv3t.explain.report.options.OptionError`), shown here as that field's flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

from conv3t.explain.report.options import ReportOptions, flag_of

__all__ = ["add_option_flags", "options_from_args", "register", "run"]


def _is_sequence(f: dataclasses.Field) -> bool:
    hint = typing.get_type_hints(ReportOptions)[f.name]
    return any(typing.get_origin(a) is tuple for a in typing.get_args(hint)) if _is_union(hint) else False


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`ReportOptions` field that has one: ``--no-X`` for a field true by default,
    ``nargs="+"`` (also comma-separated) for a sequence, else the field's type; defaults are the fields'."""
    hints = typing.get_type_hints(ReportOptions)
    for f in dataclasses.fields(ReportOptions):
        if "flag" not in f.metadata:
            continue
        meta = {k: v for k, v in f.metadata.items() if k != "flag"}
        if hints[f.name] is bool:
            parser.add_argument(f.metadata["flag"], dest=f.name, action="store_false", help=meta["help"])
        elif _is_sequence(f):
            parser.add_argument(f.metadata["flag"], dest=f.name, nargs="+", action="extend", **meta)
        else:
            kind = int if hints[f.name] is int else str
            parser.add_argument(f.metadata["flag"], dest=f.name, type=kind, default=f.default, **meta)


def options_from_args(args: argparse.Namespace) -> ReportOptions:
    """The :class:`ReportOptions` of parsed flags (``--layers a b`` and ``--layers a,b`` alike); raises
    :class:`~conv3t.explain.report.options.OptionError` for a bad value."""
    values = {}
    for f in dataclasses.fields(ReportOptions):
        if "flag" not in f.metadata:
            continue
        value = getattr(args, f.name)
        if _is_sequence(f) and value is not None:
            value = [part for item in value for part in (item.split(",") if f.name != "videos" else [item]) if part]
        values[f.name] = value
    return ReportOptions(**values)


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
    add_option_flags(parser)
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from conv3t.explain.report import build_report  # loads torch, matplotlib and the models: not at CLI start

    try:
        options = options_from_args(args)
        build_report(args.run, args.out, options, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as err:
        option = getattr(err, "option", None)
        message = str(err) if option is None else flag_of(option) + err.detail  # type: ignore[attr-defined]
        print(f"conv3t explain: error: {message}", file=sys.stderr)
        return 2
    print(Path(args.out) / "index.html")
    return 0
