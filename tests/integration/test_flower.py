"""Flower against a real worker: login, private state, live states, revoke and terminate.

Everything is real: `nightshift flower` (Flower on the project's Celery app), a
`nightshift worker` rendering the tiny model, Redis, and headless Chromium for the page.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from api_servers import ServiceProcess

from config import keys as names
from config.records import JobStatus
from config.settings import Settings
from config.tasks import RENDER_TASK
from producer.client import Client, Job

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
USER, PASSWORD = "night", "s3cret-owl"
HEARTBEAT_S = 2.0  # Celery's event heartbeat interval (the worker's default)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class FlowerProcess(ServiceProcess):
    name = "flower"
    up_timeout_s = 120.0

    def env(self) -> dict[str, str]:
        return _flower_env(self.port)

    def argv(self, *args: str) -> list[str]:
        return ["flower", *args]

    def answers(self) -> bool:
        return self.get("/healthcheck").status_code == 200

    def get(self, path: str, auth: bool = True, **params: Any) -> requests.Response:
        return requests.get(
            self.url + path, params=params, auth=(USER, PASSWORD) if auth else None, timeout=10
        )

    def post(self, path: str, **params: Any) -> requests.Response:
        return requests.post(self.url + path, params=params, auth=(USER, PASSWORD), timeout=10)

    def tail(self) -> str:
        return self.text()[-4000:]


def _flower_env(port: int) -> dict[str, str]:
    return {
        "NIGHTSHIFT_FLOWER_USER": USER,
        "NIGHTSHIFT_FLOWER_PASSWORD": PASSWORD,
        "NIGHTSHIFT_FLOWER_PORT": str(port),
        "PYTHONWARNINGS": "ignore",
    }


@pytest.fixture
def start_flower(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., FlowerProcess]]:
    started: list[FlowerProcess] = []

    def start(*args: str, **env: str) -> FlowerProcess:
        flower = FlowerProcess(settings, tmp_path / f"flower-{len(started)}.log", *args, **env)
        started.append(flower)
        flower.wait_up()
        return flower

    yield start
    for flower in started:
        flower.stop()


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def task_state(flower: FlowerProcess, task_id: str) -> str | None:
    tasks = flower.get("/api/tasks").json()
    return tasks.get(task_id, {}).get("state")


def worker_online(flower: FlowerProcess) -> dict[str, bool]:
    return flower.get("/api/workers", status="true").json()


def wait_until_rendering(job: Job, steps: int = 3) -> None:
    wait_for(lambda: job.record().progress.get("step", 0) >= steps, 120, "the job to render")


def run_flower_cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"} | env
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", "flower", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=60,
    )


def test_flower_refuses_to_start_without_credentials(settings: Settings) -> None:
    no_user = run_flower_cli(settings, NIGHTSHIFT_FLOWER_PASSWORD="x")
    open_lan = run_flower_cli(settings, "--no-auth", "--address", "0.0.0.0")

    assert no_user.returncode == 2
    assert "NIGHTSHIFT_FLOWER_USER" in no_user.stderr
    assert open_lan.returncode == 2
    assert "NIGHTSHIFT_FLOWER_ADDRESS" in open_lan.stderr and "0.0.0.0" in open_lan.stderr


def test_flower_asks_for_a_login_prints_its_url_and_keeps_its_state_private(
    settings: Settings, start_flower, worker
) -> None:
    flower = start_flower()

    assert flower.get("/api/workers", auth=False).status_code == 401
    assert flower.get("/api/workers").status_code == 200
    assert flower.url + "/" in flower.tail()
    assert PASSWORD not in " ".join(_cmdline(flower.process.pid))  # not visible in ps
    flower.stop()
    state = list(settings.data_path.glob("flower.db*"))
    assert state, "Flower wrote no state file"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in state)


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text(errors="replace").split("\0")


@pytest.mark.timeout(900)
def test_a_long_render_shows_the_worker_online_and_the_task_started_then_succeeded(
    client: Client, start_flower, worker
) -> None:
    flower = start_flower()
    wait_for(lambda: any(worker_online(flower).values()), 60, "Flower to see the worker")
    steps = steps_lasting(client, 5 * HEARTBEAT_S)
    job = client.submit("a slow lighthouse at dusk", seed=5, steps=steps, width=64, height=64)
    wait_for(lambda: task_state(flower, job.id) == "STARTED", 120, "STARTED in Flower")
    samples = []
    while not job.record().status.finished:
        samples.append((task_state(flower, job.id), all(worker_online(flower).values())))
        time.sleep(0.5)
    record = job.wait(60)

    assert record.status is JobStatus.SUCCEEDED
    assert record.render_s is not None and record.render_s > 3 * HEARTBEAT_S
    assert samples and all(online for _, online in samples), samples
    (hostname,) = worker_online(flower)
    assert f'flower_worker_online{{worker="{hostname}"}} 1.0' in flower.get("/metrics").text
    assert {state for state, _ in samples} <= {"STARTED", "SUCCESS"}
    wait_for(lambda: task_state(flower, job.id) == "SUCCESS", 30, "SUCCESS in Flower")
    task = flower.get("/api/tasks").json()[job.id]
    assert task["name"] == RENDER_TASK
    assert task["args"] == f"'a slow lighthouse at dusk' seed=5 64x64 steps={steps}"


def steps_lasting(client: Client, seconds: float) -> int:
    """Steps for a render of about `seconds` on this machine now (shared CI cores vary a lot)."""
    probe = client.submit("probe", steps=8, width=64, height=64).wait(300)
    per_step = (probe.render_s or 1.0) / 9  # PNDM: 9 UNet calls for 8 steps
    return max(10, min(500, int(seconds / per_step)))


def test_revoking_a_queued_task_in_flower_cancels_the_job(
    client: Client, start_flower, worker
) -> None:
    flower = start_flower()
    long = client.submit("long", steps=400, width=64, height=64)
    queued = client.submit("queued", steps=2, width=64, height=64)
    wait_until_rendering(long)

    assert flower.post(f"/api/task/revoke/{queued.id}").status_code == 200
    long.cancel()
    record = queued.wait(120)

    assert record.status is JobStatus.CANCELLED
    assert record.attempts == 0 and record.outputs == []
    assert client.submit("after", steps=2, width=64, height=64).wait(120).status.value == (
        "succeeded"
    )


def test_terminating_a_running_task_in_flower_stops_it_and_the_model_stays_warm(
    client: Client, start_flower, worker
) -> None:
    flower = start_flower()
    wait_for(lambda: any(worker_online(flower).values()), 60, "Flower to see the worker")
    children = worker.child_pids()
    long = client.submit("terminated", steps=400, width=64, height=64)
    wait_until_rendering(long)

    assert flower.post(f"/api/task/revoke/{long.id}", terminate="true").status_code == 200
    record = long.wait(60)

    assert record.status is JobStatus.CANCELLED, record.error
    assert "cancelled at step" in (record.error or "")
    assert record.progress["step"] < record.progress["steps"]
    assert worker.child_pids() == children  # the rendering process was not killed
    wait_for(lambda: task_state(flower, long.id) == "REVOKED", 30, "REVOKED in Flower")
    nxt = client.submit("next", steps=2, width=64, height=64).wait(120)
    assert nxt.status is JobStatus.SUCCEEDED
    assert nxt.render.pid == record.render.pid
    stats = client.store.redis.hgetall(names.worker_key(nxt.render.worker, nxt.render.pid))
    assert stats["loads"] == "1"  # still the first load: warm, never reloaded


def test_a_sigterm_that_is_no_terminate_still_ends_the_child_and_the_job_is_requeued(
    client: Client, worker
) -> None:
    """What a cold shutdown does to the child: trapping terminate must not change it."""
    long = client.submit("requeued", steps=12, width=64, height=64)
    wait_until_rendering(long, steps=2)
    (child,) = worker.child_pids()
    os.kill(child, signal.SIGTERM)
    record = long.wait(300)

    assert record.status is JobStatus.SUCCEEDED, record.error
    assert record.attempts == 2  # requeued (reject on worker lost), not cancelled
    assert record.render.pid != child


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs chromium (CI installs it)")
def test_the_tasks_page_in_a_headless_browser_shows_the_nightshift_task(
    client: Client, start_flower, worker, tmp_path: Path
) -> None:
    flower = start_flower()
    # Flower's event receiver is connected once it has seen the worker's heartbeat.
    wait_for(lambda: any(worker_online(flower).values()), 60, "Flower to see the worker")
    job = client.submit("a red fox in the snow", seed=7, steps=2, width=64, height=64)
    assert job.wait(120).status is JobStatus.SUCCEEDED
    wait_for(lambda: task_state(flower, job.id) == "SUCCESS", 30, "SUCCESS in Flower")
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{flower.port}/tasks"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "flower-tasks.png"
    shot.unlink(missing_ok=True)

    # The table is filled by an XHR after load; on a busy machine it can miss the budget.
    dom = wait_for(lambda: page_with(tmp_path, url, job.id), 120, "the task in the page")
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1920,600", url)

    assert job.id in dom and "nightshift.render" in dom
    assert "a red fox in the snow" in dom and "SUCCESS" in dom
    assert shot.is_file() and shot.stat().st_size > 10_000


def page_with(tmp_path: Path, url: str, text: str) -> str | None:
    dom = chromium(tmp_path, "--dump-dom", url)
    return dom if text in dom else None


def chromium(tmp_path: Path, *args: str) -> str:
    out = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            # Flower fills the table with an XHR after load: give it time to land.
            "--virtual-time-budget=15000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout
