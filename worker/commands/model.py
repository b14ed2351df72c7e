"""`nightshift model tiny DIR [--family sd15|sd2|sdxl]`: write a tiny random-weight pipeline of
that family for tests and demos; `nightshift model tiny-lora NAME [--family] [--dir]`: a random
LoRA for it, in the LoRA folder.

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
    lora = model_sub.add_parser(
        "tiny-lora", help="write a random LoRA for the tiny pipeline into the LoRA folder"
    )
    lora.add_argument("name", help="the LoRA's name (its file is NAME.safetensors)")
    lora.add_argument("--dir", type=Path, help="folder (default: the first NIGHTSHIFT_LORA_DIRS)")
    lora.add_argument("--seed", type=int, default=0)
    lora.add_argument(
        "--family", choices=FAMILY_NAMES, default="sd15", help="model family (default sd15)"
    )
    lora.set_defaults(handler=cmd_model_tiny_lora)


def cmd_model_tiny(args: argparse.Namespace) -> int:
    from worker.logs import quiet_libraries
    from worker.render.tiny import write_tiny_model

    quiet_libraries()
    path = write_tiny_model(args.dir, seed=args.seed, family_name=args.family)
    print(path)
    print(
        f"note: a tiny random-weight {args.family} pipeline for tests and offline demos; "
        "its pictures are noise."
    )
    return 0


def cmd_model_tiny_lora(args: argparse.Namespace) -> int:
    from config.fields import check_lora_name
    from config.settings import Settings
    from worker.logs import quiet_libraries
    from worker.render.tiny import write_tiny_lora

    quiet_libraries()
    check_lora_name(args.name)
    folder = args.dir or Settings.from_env().lora_paths[0]
    print(write_tiny_lora(folder, args.name, family_name=args.family, seed=args.seed))
    print(f"note: random weights for the tiny {args.family} pipeline; it only makes noise differ.")
    return 0
