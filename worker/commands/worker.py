"""`nightshift worker`: run the Celery worker, one job at a time.

Imported by the command-line front door only when parsing; the Celery app (and through it
torch) loads only inside the handler.
"""

from __future__ import annotations

import argparse
import os
import socket

from config.settings import Settings


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


def cmd_worker(args: argparse.Namespace) -> int:
    if args.queues:
        # The child process reads settings from the environment, so pass the flag down there.
        os.environ["NIGHTSHIFT_QUEUES"] = args.queues
    if args.window:
        from config.window import Window

        Window.parse(args.window)  # a bad window fails here, with the flag's value
        os.environ["NIGHTSHIFT_WORKER_WINDOW"] = args.window
    settings = Settings.from_env()  # what worker.app will read too, flags included
    from worker import logs

    # Before the app loads and Celery sets its logging up: the formatter and the libraries'
    # quiet switches must be in place when the first line is written.
    logs.install(settings.log_format)
    from worker.app import app

    # A log shipper reads one JSON object a line: no banner (Celery prints it, not logs it).
    # --quiet is an option of `celery`, so it goes before the `worker` sub-command.
    quiet = ["--quiet"] if settings.log_format == "json" else []
    app.worker_main(
        [
            *quiet,
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
