"""`nightshift flower` keeps every page behind its login, /metrics included, and says where
it listens: a real Flower process on the test's Redis, asked over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from api_servers import stop_gracefully

from config.settings import Settings
from producer.local_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "night", "a-long-owl-passphrase"


class Flower:
    """`nightshift flower` in a subprocess, its stdout and stderr kept apart."""

    def __init__(self, settings: Settings, logs: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.out, self.err = logs / f"flower-{self.port}.out", logs / f"flower-{self.port}.err"
        full_env = os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"}
        full_env |= {"NIGHTSHIFT_FLOWER_PORT": str(self.port), "NIGHTSHIFT_FLOWER_USER": USER}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "producer.cli", "flower", *args],
                env=full_env | env, cwd=ROOT, stdout=out, stderr=err,
            )  # fmt: skip

    def get(self, path: str, auth: tuple[str, str] | None = None) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", auth=auth, timeout=10)

    def wait_up(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"flower exited:\n{self.err.read_text()}"
            try:
                if self.get("/healthcheck").status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"flower not up after {timeout_s} s:\n{self.err.read_text()}")

    def stop(self) -> None:
        stop_gracefully(self.process)


@pytest.fixture
def start_flower(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Flower]]:
    started: list[Flower] = []

    def start(*args: str, password: str = PASSWORD) -> Flower:
        flower = Flower(settings, tmp_path, *args, NIGHTSHIFT_FLOWER_PASSWORD=password)
        started.append(flower)
        flower.wait_up()
        return flower

    yield start
    for flower in started:
        flower.stop()


def test_flower_metrics_ask_for_the_same_login_as_its_pages(start_flower) -> None:
    flower = start_flower()

    assert flower.get("/").status_code == 401
    assert flower.get("/metrics").status_code == 401
    assert flower.get("/metrics", auth=(USER, "wrong")).status_code == 401
    metrics = flower.get("/metrics", auth=(USER, PASSWORD))
    assert metrics.status_code == 200 and "flower_events_total" in metrics.text


def test_flower_says_it_listens_on_all_interfaces_and_warns_of_a_weak_password(
    start_flower,
) -> None:
    flower = start_flower("--address", "0.0.0.0", password="Owl7")

    assert f"Flower: http://0.0.0.0:{flower.port}/ (all interfaces)" in flower.out.read_text()
    assert "http://127.0.0.1" not in flower.out.read_text()
    warning = flower.err.read_text()
    assert "warning: Flower listens on" in warning and "NIGHTSHIFT_FLOWER_PASSWORD" in warning
    assert "Owl7" not in warning  # never the password itself


def test_flower_on_loopback_with_a_short_password_prints_no_warning(start_flower) -> None:
    flower = start_flower(password="Owl7")

    assert f"Flower: http://127.0.0.1:{flower.port}/" in flower.out.read_text()
    assert "NIGHTSHIFT_FLOWER_PASSWORD" not in flower.err.read_text()
