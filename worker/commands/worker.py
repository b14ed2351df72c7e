"""Worker-side commands: `nightshift worker` and `nightshift model tiny DIR`.

Imported by the command-line front door only when parsing; torch loads only inside handlers.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker", help="run the Celery worker (one job at a time)")
    worker.add_argument(
        "--queues", help="comma-separated queues to consume (default NIGHTSHIFT_QUEUES, 'mps')"
    )
    worker.add_argument(
        "--window", help="take jobs only between these local times, e.g. 22:00-07:00"
    )
    worker.add_argument("--hostname", default=f"nightshift@{socket.gethostname()}")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=cmd_worker)

    model = sub.add_parser("model", help="model utilities")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="WHAT")
    tiny = model_sub.add_parser("tiny", help="write a tiny random-weight SD pipeline to DIR")
    tiny.add_argument("dir", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(handler=cmd_model_tiny)


def cmd_worker(args: argparse.Namespace) -> int:
    if args.queues:
        # The child process reads settings from the environment, so pass the flag down there.
        os.environ["NIGHTSHIFT_QUEUES"] = args.queues
    if args.window:
        from worker.hooks.gate import Window

        Window.parse(args.window)  # a bad window fails here, with the flag's value
        os.environ["NIGHTSHIFT_WORKER_WINDOW"] = args.window
    from worker.app import app, settings

    app.worker_main(
        [
            "worker",
            "--queues",
            ",".join(settings.queue_list),
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--hostname",
            args.hostname,
            "--loglevel",
            args.loglevel,
            "--task-events",
        ]
    )
    return 0


def cmd_model_tiny(args: argparse.Namespace) -> int:
    from worker.render.tiny import write_tiny_model

    path = write_tiny_model(args.dir, seed=args.seed)
    print(path)
    print(
        "note: a tiny random-weight Stable Diffusion pipeline for tests and offline demos; "
        "its pictures are noise."
    )
    return 0
