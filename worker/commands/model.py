"""`nightshift model tiny DIR`: write a tiny random-weight pipeline for tests and demos.

Imported by the command-line front door only when parsing; torch loads inside the handler.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="model utilities")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="WHAT")
    tiny = model_sub.add_parser("tiny", help="write a tiny random-weight SD pipeline to DIR")
    tiny.add_argument("dir", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(handler=cmd_model_tiny)


def cmd_model_tiny(args: argparse.Namespace) -> int:
    from worker.render.tiny import write_tiny_model

    path = write_tiny_model(args.dir, seed=args.seed)
    print(path)
    print(
        "note: a tiny random-weight Stable Diffusion pipeline for tests and offline demos; "
        "its pictures are noise."
    )
    return 0
