"""The ``trailcam`` command line: one subcommand per stage.

Each module in this package that defines ``register(subparsers)`` adds its subcommands; the
handler it sets with ``parser.set_defaults(func=...)`` receives the parsed namespace, calls one
core function, prints a one-line summary and returns an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from trailcam_core import __version__
from trailcam_core.base import TrailcamError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trailcam", description="Curate camera-trap archives into "
                                     "captioned collections, mosaics and LoRA models.")
    parser.add_argument("--version", action="version", version=f"trailcam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TrailcamError as exc:
        print(f"trailcam {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"trailcam {args.command}: interrupted", file=sys.stderr)
        return 130
