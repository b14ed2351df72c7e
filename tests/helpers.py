"""Helpers shared by test modules (import as `from helpers import ...`; pytest puts tests/ on
sys.path)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from config import keys as names
from config.models import Catalog
from config.settings import Settings
from config.store.broker import queue_depths, queue_names
from producer.local_redis import redis_answers

ROOT = Path(__file__).resolve().parent.parent


def nightshift(
    settings: Settings | None, *args: str, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the real `nightshift` command line against this test's Redis and queue.

    settings=None runs it with only the environment given (and the process's own).
    """
    full_env = os.environ | (settings.to_env() if settings else {}) | env
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        env=full_env | {"PYTHONWARNINGS": "ignore"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def queues_of(settings: Settings) -> list[str]:
    """Every kombu queue a job of these settings can wait on: each plain queue (messages from
    before models existed) and `queue@model` for every model of the local catalog or published
    by a live worker (config/store/broker.py queue_names)."""
    r = redis.Redis.from_url(settings.redis_url)
    return queue_names(r, settings.queue_list, Catalog.from_settings(settings).names)


def queued_lists(settings: Settings) -> list[str]:
    """The Redis lists behind queues_of: one per queue and priority level (`q@m`, `q@m:3`)."""
    return [names.priority_list(q, p) for q in queues_of(settings) for p in names.PRIORITIES]


def queued_count(settings: Settings) -> int:
    """Messages waiting on any of these settings' queues, any model, any priority."""
    r = redis.Redis.from_url(settings.redis_url)
    return sum(queue_depths(r, queues_of(settings)).values())


@contextmanager
def redis_server_with(url: str, *args: str, log: Path | None = None) -> Iterator[str]:
    """A throwaway `redis-server` started with these arguments; yields url once it answers.

    For the odd setups a test needs (a password, TLS only, no persistence); the suite's own
    Redis is the session fixture in conftest.py.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    extra = ["--logfile", str(log)] if log else []
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", *args, *extra], stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(url, 0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                out = log.read_text(errors="replace")[-500:] if log and log.exists() else ""
                raise AssertionError(f"redis-server {' '.join(args)} did not start: {out}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
