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

from config.settings import Settings
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
