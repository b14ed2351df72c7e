"""Shared fixtures: a private redis-server per session, the tiny model, real worker processes.

Nothing here is mocked: tests talk to a real redis-server on a free port and to real
`nightshift worker` processes running the tiny random-weight model on the CPU.

Tiers (scripts/test TIER): tests/unit needs no service and no model; tests/render loads the
tiny model, no Redis; tests/integration starts redis-server, workers, Flower, Chromium.
Without redis-server a test that needs it is skipped on a laptop and fails in CI (CI=true).
Tests under tests/render and tests/integration carry the `render` and `integration` markers
(added at collection, below), so `-m "not integration"` selects as the folders do.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from config import keys as names
from config.settings import Settings
from producer.client import Client
from producer.local_redis import LocalRedis

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
WORKER_READY_TIMEOUT_S = 120.0
TIER_MARKERS = {"render": pytest.mark.render, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/render or tests/integration with its tier's marker."""
    for item in items:
        try:
            tier = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if tier in TIER_MARKERS:
            item.add_marker(TIER_MARKERS[tier])


def need(binary: str) -> None:
    """Skip without `binary` on a developer's machine; fail in CI, where it must be there."""
    if shutil.which(binary) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed, and CI must run every test")
        pytest.skip(f"{binary} is not installed")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    need("redis-server")
    server = LocalRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> Iterator[str]:
    """A clean database for each test, flushed before and after."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a test before this one killed it on purpose
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    if redis_server.process is not None and redis_server.process.poll() is None:
        client.flushall()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from worker.render.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def settings(redis_url: str, tiny_model: Path, tmp_path: Path) -> Settings:
    """Settings for one test: its own results folder and its own queue."""
    return Settings(
        redis_url=redis_url,
        model=str(tiny_model),
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        device="cpu",
        queues=f"test-{uuid.uuid4().hex[:8]}",
        default_steps=4,
        progress_interval_s=0.05,
        # The path of cuda and mps workers (auto turns it off on the CPU these tests run on).
        write_behind=True,
    )


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    """Settings for a unit test: nothing listens at the Redis URL, and nothing needs it."""
    return Settings(
        redis_url="redis://127.0.0.1:1/0",
        model="tiny",
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        device="cpu",
        queues="unit",
        default_steps=4,
    )


@pytest.fixture
def render_settings(offline_settings: Settings, tiny_model: Path) -> Settings:
    """Settings for a render test (tests/render): the tiny model, and still no Redis."""
    return offline_settings.model_copy(update={"model": str(tiny_model)})


@pytest.fixture
def client(settings: Settings) -> Client:
    return Client(settings)


class WorkerProcess:
    """A real `nightshift worker` in a subprocess, with its log kept for failures."""

    def __init__(self, settings: Settings, log_path: Path, extra_env: dict[str, str]) -> None:
        self.settings = settings
        self.log_path = log_path
        env = os.environ | settings.to_env() | extra_env
        env["PYTHONWARNINGS"] = "ignore"
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "worker",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{settings.default_queue}-{uuid.uuid4().hex[:4]}@%h",
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, count: int = 1, timeout_s: float = WORKER_READY_TIMEOUT_S) -> None:
        """Wait until `count` worker processes have loaded and warmed the model."""
        r = redis.Redis.from_url(self.settings.redis_url, decode_responses=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.tail()}")
            if len(r.zrange(names.WORKERS_INDEX, 0, -1)) >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {timeout_s} s:\n{self.tail()}")

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self.child_pids():
            os.kill(pid, signal.SIGKILL)
        self.log.close()

    def tail(self, chars: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(
        wait: bool = True, settings_: Settings | None = None, **extra_env: str
    ) -> WorkerProcess:
        worker = WorkerProcess(
            settings_ or settings, tmp_path / f"worker-{len(started)}.log", extra_env
        )
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker: Callable[..., WorkerProcess]) -> WorkerProcess:
    return start_worker()
