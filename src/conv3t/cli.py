"""The ``conv3t`` command: a thin dispatcher over one module per sub-command.

Each module in :mod:`conv3t.commands` exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (a callable taking the parsed namespace and returning an exit status).
Importing is lazy where it matters: heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Sub-command modules, in the order ``conv3t --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "params",
    "data",
    "train",
    "eval",
    "demo",
    "explain",
    "compare",
    "verify",
    "import_authors",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conv3t",
        description="Train and explain video networks built from temporally factorized 3D convolutions.",
    )
    from conv3t import __version__

    parser.add_argument("--version", action="version", version=f"conv3t {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"conv3t.commands.{name}")
        except Exception as err:  # a broken command must not vanish from `conv3t --help` without a word
            raise ImportError(f"conv3t: the {name!r} command (conv3t.commands.{name}) failed to import: {err}") from err
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
