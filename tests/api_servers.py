"""A real `nightshift api` for the tests that drive it over HTTP, and what those modules share:
their own flushed Redis and settings, tokens made by the real `nightshift token create`, and
the server and worker they run for the whole module (import as `from api_servers import ...`;
pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
from conftest import WorkerProcess
from helpers import ROOT, nightshift

from config.settings import Settings
from producer.local_redis import LocalRedis, free_port

SCOPES = ("read", "submit", "admin")


def stop_gracefully(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the command's clean stop), then SIGKILL after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ServiceProcess:
    """`nightshift COMMAND ...` (api, flower) in a subprocess on a free port, its output in a
    log file; up once `answers()` says so."""

    name = "service"
    up_timeout_s = 60.0

    def __init__(self, settings: Settings, log_path: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = log_path.open("ab")
        full_env = os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"} | self.env() | env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", *self.argv(*args)],
            env=full_env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def argv(self, *args: str) -> list[str]:
        """The command line after `nightshift`, listening on self.port."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        """Variables of its own (a port it reads from the environment)."""
        return {}

    def answers(self) -> bool:
        raise NotImplementedError

    def wait_up(self, timeout_s: float | None = None) -> None:
        timeout_s = timeout_s or self.up_timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.text()}"
            try:
                if self.answers():
                    return
            except (httpx.TransportError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not up after {timeout_s} s:\n{self.text()}")

    def stop(self) -> None:
        stop_gracefully(self.process)
        self.log.close()

    def text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")


class ApiProcess(ServiceProcess):
    """A real `nightshift api` on a free port."""

    name = "nightshift api"

    def argv(self, *args: str) -> list[str]:
        return ["api", "--port", str(self.port), *args]

    def answers(self) -> bool:
        return httpx.get(f"{self.url}/v1/openapi.json", timeout=2).status_code == 200


def module_settings(
    redis_server: LocalRedis, tiny_model: Path, folder: Path, name: str, **changes: Any
) -> Settings:
    """A module's own settings on the session's Redis, flushed: the module owns it while it
    runs (other modules flush it per test). Tiny renders, progress every 20 ms."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    base: dict[str, Any] = {
        "redis_url": redis_server.url,
        "model": str(tiny_model),
        "data_dir": folder / "data",
        "results_dir": folder / "results",
        "device": "cpu",
        "queues": f"{name}-{uuid.uuid4().hex[:8]}",
        "progress_interval_s": 0.02,
    }
    return Settings(**(base | changes))


def made_tokens(
    settings: Settings, prefix: str, scopes: tuple[str, ...] = SCOPES
) -> dict[str, str]:
    """scope -> a token of it, made by `nightshift token create`."""
    made = {}
    for scope in scopes:
        out = nightshift(settings, "token", "create", f"{prefix}-{scope}", "--scope", scope)
        assert out.returncode == 0, out.stderr
        made[scope] = out.stdout.strip()
        assert made[scope].startswith("nst_") and "\n" not in made[scope]
    return made


@contextmanager
def api_running(settings: Settings, log: Path, *args: str) -> Iterator[ApiProcess]:
    server = ApiProcess(settings, log, *args)
    try:
        server.wait_up()
        yield server
    finally:
        server.stop()


@contextmanager
def worker_running(settings: Settings, log: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(settings, log, {})
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
