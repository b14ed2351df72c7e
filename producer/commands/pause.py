"""`nightshift pause` and `nightshift resume`: workers finish the current job, then wait."""

from __future__ import annotations

import argparse

from config.store import control, reachable
from producer.client import Client


def add_parsers(sub: argparse._SubParsersAction) -> None:
    pause = sub.add_parser("pause", help="workers finish the current job, then take no more")
    pause.add_argument(
        "--release-memory",
        action="store_true",
        help="also give the models' memory back (the first job after resume reloads)",
    )
    pause.set_defaults(handler=cmd_pause)
    sub.add_parser("resume", help="workers take jobs again").set_defaults(handler=cmd_resume)


def cmd_pause(args: argparse.Namespace) -> int:
    client = Client.from_env()
    with reachable():
        control.pause(client.store.redis, release_memory=args.release_memory)
    freed = "; their models' memory is given back" if args.release_memory else ""
    print(f"paused: workers finish their current job and take no more{freed} (nightshift resume)")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    client = Client.from_env()
    with reachable():
        was = control.resume(client.store.redis)
    print("resumed" if was else "was not paused")
    return 0
