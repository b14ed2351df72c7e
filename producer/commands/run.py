"""`nightshift run PROMPT`: the whole path in one command, for a first try or a demo.

Uses NIGHTSHIFT_REDIS_URL when it answers; otherwise starts a private redis-server with
its data in <data_dir>/redis. Starts a worker on a private queue, renders one job, prints
where the image is, and stops what it started.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from contextlib import ExitStack

from config.records import JobStatus
from config.settings import Settings
from producer.client import Client
from producer.local_redis import LocalRedis, redis_answers


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="start what is needed, render one prompt, print the PNG path")
    p.add_argument("prompt")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--timeout", type=float, default=3600.0)
    p.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    with ExitStack() as stack:
        url = settings.redis_url
        if not redis_answers(url):
            server = stack.enter_context(LocalRedis(settings.data_path / "redis"))
            url = server.url
            print(
                f"started a private redis-server at {url} (data in {server.data_dir})",
                file=sys.stderr,
            )
        queue = f"run-{uuid.uuid4().hex[:8]}"
        env = os.environ | {"NIGHTSHIFT_REDIS_URL": url, "NIGHTSHIFT_QUEUES": queue}
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "worker",
                "--hostname",
                f"{queue}@%h",
                "--loglevel",
                "WARNING",
            ],
            env=env,
            # Stdout carries only the PNG path(s): the worker's banner and logs go to stderr.
            stdout=sys.stderr,
        )
        stack.callback(_stop, worker)
        client = Client(Settings.from_env(redis_url=url, queues=queue))
        params = {
            "seed": args.seed,
            "steps": args.steps,
            "width": args.width,
            "height": args.height,
        }
        job = client.submit(args.prompt, **params)
        print(f"job {job.id} queued; loading {settings.model} and rendering…", file=sys.stderr)
        record = job.wait(args.timeout)
    if record.status is not JobStatus.SUCCEEDED:
        print(f"nightshift: job {record.id} {record.status.value}: {record.error}", file=sys.stderr)
        return 1
    print("\n".join(record.outputs))
    return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # SIGTERM: Celery's warm shutdown
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
