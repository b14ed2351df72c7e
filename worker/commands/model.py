"""`nightshift model tiny DIR [--family sd15|sd2|sdxl]`: write a tiny random-weight pipeline of
that family for tests and demos.

Imported by the command-line front door only when parsing; torch loads inside the handler.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from config.families import FAMILY_NAMES


def add_parsers(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="model utilities")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="WHAT")
    tiny = model_sub.add_parser("tiny", help="write a tiny random-weight SD pipeline to DIR")
    tiny.add_argument("dir", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument(
        "--family", choices=FAMILY_NAMES, default="sd15", help="model family (default sd15)"
    )
    tiny.set_defaults(handler=cmd_model_tiny)


def cmd_model_tiny(args: argparse.Namespace) -> int:
    from worker.render.tiny import write_tiny_model

    path = write_tiny_model(args.dir, seed=args.seed, family_name=args.family)
    print(path)
    print(
        f"note: a tiny random-weight {args.family} pipeline for tests and offline demos; "
        "its pictures are noise."
    )
    return 0
