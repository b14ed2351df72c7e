"""`nightshift run PROMPT`: the whole path in one command, for a first try or a demo.

Uses NIGHTSHIFT_REDIS_URL when it answers; otherwise starts a private redis-server with
its data in <data_dir>/redis. Starts a worker on a private queue, renders one job, prints
where the image is, and stops what it started.

A newcomer sees a line or two and the PNG path: the worker's banner, its log and whatever
the libraries print go to <data_dir>/logs/<queue>.log, whose path is printed first (and its
last lines again if the worker stops before the job ends).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from config.errors import WaitTimeout
from config.records import JobRecord, JobStatus
from config.settings import Settings
from producer.client import Client, Job
from producer.console import bar_text
from producer.local_redis import LocalRedis, redis_answers

POLL_S = 0.25  # a one-shot demo: reading one record four times a second costs nothing
LOG_TAIL_LINES = 20


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
            say(f"started a private redis-server at {url} (data in {server.data_dir})")
        queue = f"run-{uuid.uuid4().hex[:8]}"
        log_path = settings.data_path / "logs" / f"{queue}.log"
        worker = start_worker(url, queue, log_path)
        stack.callback(_stop, worker)
        client = Client(Settings.from_env(redis_url=url, queues=queue))
        params = {
            "seed": args.seed,
            "steps": args.steps,
            "width": args.width,
            "height": args.height,
        }
        job = client.submit(args.prompt, **params)
        model = job.record().spec.model
        say(f"job {job.id}: rendering with model {model}; worker log: {log_path}")
        record = wait(job, worker, args.timeout, StatusLine(sys.stderr))
        if record is None:
            code = worker.returncode
            say(f"the worker stopped (exit code {code}) before job {job.id} ended; its log ends:")
            sys.stderr.write(log_tail(log_path))
            return 1
    if record.status is not JobStatus.SUCCEEDED:
        say(f"job {record.id} {record.status.value}: {record.error} (worker log: {log_path})")
        return 1
    print("\n".join(record.outputs))
    return 0


def say(line: str) -> None:
    print(f"nightshift: {line}", file=sys.stderr, flush=True)


def start_worker(url: str, queue: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`nightshift worker` on this queue, everything it writes going to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"NIGHTSHIFT_REDIS_URL": url, "NIGHTSHIFT_QUEUES": queue}
    argv = [sys.executable, "-m", "producer.cli", "worker", "--hostname", f"{queue}@%h"]
    with log_path.open("ab") as log:  # the child holds its own descriptor
        return subprocess.Popen(
            [*argv, "--loglevel", "INFO"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait(
    job: Job, worker: subprocess.Popen[bytes], timeout: float, status: StatusLine
) -> JobRecord | None:
    """The job's final record; None when the worker stopped first (it would never end)."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    try:
        while True:
            record = job.record()
            if record.status.finished:
                return record
            if worker.poll() is not None:
                return None
            if time.monotonic() > deadline:
                raise WaitTimeout(f"job {job.id} still {record.status.value} after {timeout:g} s")
            status.show(record, time.monotonic() - started)
            time.sleep(POLL_S)
    finally:
        status.end()


class StatusLine:
    """One line redrawn in place on a terminal: loading, then the step bar. Nothing elsewhere
    (a log or a pipe keeps only the lines that say something)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.drawn = ""

    def show(self, record: JobRecord, elapsed_s: float) -> None:
        if not self.tty:
            return
        text = bar_text(record.progress)
        if not text:
            waiting = "loading the model" if record.status is JobStatus.QUEUED else "starting"
            text = f"{waiting}… {elapsed_s:.0f} s"
        if text != self.drawn:
            self.stream.write(f"\r\x1b[2K{text}")  # \x1b[2K: clear the longer line drawn before
            self.stream.flush()
            self.drawn = text

    def end(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = ""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    tail = text.splitlines()[-lines:]
    return "".join(f"  {line}\n" for line in tail)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # SIGTERM: Celery's warm shutdown
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
