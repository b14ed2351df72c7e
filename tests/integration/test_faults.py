"""Faults the queue must survive, each with real processes: redis-server, `nightshift worker`.

Faults that cannot be caused from outside (a render that crashes or hangs, a full disk,
a crash between writing the PNG and the ack) are injected from the test: it puts
tests/faultinject/ on the PYTHONPATH of that one worker subprocess, whose sitecustomize
wraps the renderer and the PNG writer. Shipped code carries no hook for any of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from helpers import nightshift, queued_count, redis_server_with

from config import keys as names
from config.errors import BrokerUnavailable, InvalidSettings
from config.records import JobStatus
from config.settings import Settings
from producer.client import Client, Job
from producer.commands import deadletter as deadletter_cli
from producer.local_redis import LocalRedis, free_port

ROOT = Path(__file__).resolve().parents[2]
FAULTINJECT = str(Path(__file__).resolve().parents[1] / "faultinject")
SMALL = {"width": 64, "height": 64}


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


def wait_rendering(job: Job, step: int = 2, timeout_s: float = 120) -> None:
    wait_until(lambda: job.record().progress.get("step", 0) >= step, timeout_s, "the render")


def kill_hard(worker) -> None:
    """SIGKILL the parent first (its children follow by PDEATHSIG), as a crash would."""
    children = worker.child_pids()
    worker.signal(signal.SIGKILL)
    worker.process.wait(30)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def pngs(settings: Settings) -> list[Path]:
    return sorted(settings.results_path.rglob("*.png"))


def renders(fault_dir: Path, job_id: str) -> int:
    log = fault_dir / "renders.log"
    return log.read_text().split().count(job_id) if log.exists() else 0


@pytest.fixture
def faulty(start_worker, tmp_path: Path) -> Callable[..., object]:
    """Start a worker with the test's fault injection loaded (see the module docstring)."""

    def start(**kwargs: object) -> object:
        return start_worker(PYTHONPATH=FAULTINJECT, FAULTINJECT_DIR=str(tmp_path), **kwargs)

    return start


# 1. SIGKILL mid-render, and a cold shutdown (SIGQUIT).


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "sigquit", "sigterm-past-grace"])
def test_a_job_whose_worker_dies_mid_render_finishes_once_on_the_next_worker(
    how: str, client: Client, faulty, settings: Settings
) -> None:
    first = faulty()
    job = client.submit("[slow] interrupted", seed=5, steps=20, **SMALL)
    wait_rendering(job)
    if how == "sigkill":
        kill_hard(first)
    elif how == "sigterm-past-grace":
        # A graceful stop whose grace runs out before the render ends: the service
        # manager (launchd, systemd) follows up with SIGKILL; the job goes back to the queue.
        first.signal(signal.SIGTERM)
        time.sleep(1)
        assert first.process.poll() is None  # still finishing the job
        kill_hard(first)
    else:
        first.signal(signal.SIGQUIT)  # cold shutdown: the running job is abandoned
        first.process.wait(60)
    assert job.record().status is JobStatus.STARTED

    restarted_at = time.time()
    faulty(wait=False)
    record = job.wait(timeout=300)

    assert record.status is JobStatus.SUCCEEDED, record.error
    assert record.attempts == 2
    # Picked up again within 60 s of the new worker starting, not after the 2 h
    # visibility timeout after which kombu itself would have restored the message.
    assert record.started_at is not None and record.started_at - restarted_at < 60
    assert [p.name for p in pngs(settings)] == [f"{job.id}-00.png"]
    assert not list(settings.results_path.rglob(".tmp-*"))


def test_a_job_held_by_a_live_worker_is_never_restored(client: Client, faulty) -> None:
    """Sweeps from another process while the worker renders: the job stays where it is."""
    faulty(NIGHTSHIFT_LEASE_TTL_S="2")
    job = client.submit("[slow] held", steps=40, **SMALL)
    wait_rendering(job)
    from worker.hooks.leases import sweep

    conn = client.app.connection_for_write()
    try:
        assert sweep(conn.default_channel, 2.0) == []
        time.sleep(3)  # past the delivery grace: now only the live lease protects the job
        assert job.record().status is JobStatus.STARTED
        assert conn.default_channel.client.hlen("unacked") == 1
        assert sweep(conn.default_channel, 2.0) == []
    finally:
        conn.close()
    record = job.wait(300)
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 1


# 2. A job that kills its worker every time.


@pytest.mark.slow
def test_a_job_that_kills_its_worker_every_time_is_dead_lettered_and_the_queue_goes_on(
    client: Client, faulty, start_worker, settings: Settings, tmp_path: Path
) -> None:
    poison = client.submit("[kill-render] a prompt that crashes the driver", **SMALL, steps=2)
    after = client.submit("the next job", steps=2, **SMALL)
    worker = faulty()

    record = poison.wait(timeout=400)
    assert record.status is JobStatus.FAILED
    assert record.attempts == settings.max_attempts == 3
    assert "died during each of its 3 attempts" in (record.error or "")
    assert renders(tmp_path, poison.id) == 3
    assert after.wait(timeout=120).status is JobStatus.SUCCEEDED
    assert worker.process.poll() is None  # the worker went on; no crash loop

    assert [r.id for r in deadletter_cli.dead_jobs(client)] == [poison.id]
    out = nightshift(settings, "deadletter", "list")
    assert poison.id in out.stdout and "died during each" in out.stdout

    # Fixed the cause (here: a worker without the fault): requeue runs it again from scratch.
    worker.stop()
    assert nightshift(settings, "deadletter", "requeue", poison.id).returncode == 0
    assert poison.record().status is JobStatus.QUEUED and poison.record().attempts == 0
    assert deadletter_cli.dead_jobs(client) == []
    start_worker()
    record = poison.wait(timeout=120)
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 1


def test_requeue_refuses_a_job_that_is_not_dead_lettered(client: Client, settings) -> None:
    job = client.submit("alive", steps=2, **SMALL)
    out = nightshift(settings, "deadletter", "requeue", job.id)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"nightshift: job_id: not on the dead-letter list (got {job.id!r})"
    )


# 4. Redis down at submit.


def test_submitting_while_redis_is_down_fails_fast_and_writes_nothing(
    settings: Settings, redis_server: LocalRedis
) -> None:
    client = Client(settings)
    redis_server.kill()
    try:
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="Redis is not reachable"):
            client.submit("nobody listens", job_id="down-1", steps=2, **SMALL)
        assert time.monotonic() - began < 15  # a few seconds, never a hang
        out = nightshift(settings, "submit", "nobody listens", "--id", "down-2", timeout=30)
        assert out.returncode == 3
        assert "Redis is not reachable" in out.stderr
    finally:
        redis_server.start()
    r = redis.Redis.from_url(settings.redis_url)
    assert r.exists(names.job_key("down-1"), names.job_key("down-2")) == 0
    assert r.zcard(names.JOBS_INDEX) == 0
    assert queued_count(settings) == 0


# 6. A render that hangs; the time limit must stay below the visibility timeout.


def test_a_time_limit_not_below_the_visibility_timeout_is_refused(settings: Settings) -> None:
    with pytest.raises(InvalidSettings, match="JOB_TIME_LIMIT_S must be below"):
        Settings.from_env(job_time_limit_s=7200, visibility_timeout_s=7200)
    env = settings.to_env() | {"NIGHTSHIFT_JOB_TIME_LIMIT_S": "900"}
    env["NIGHTSHIFT_VISIBILITY_TIMEOUT_S"] = "600"
    out = nightshift(None, "worker", timeout=60, **env)
    assert out.returncode == 2
    assert "NIGHTSHIFT_JOB_TIME_LIMIT_S must be below NIGHTSHIFT_VISIBILITY_TIMEOUT_S" in out.stderr


# 3. Redis restarted with jobs queued; and the start-up warning without persistence.


@pytest.mark.slow
def test_a_redis_restart_with_100_jobs_queued_loses_and_duplicates_none(
    client: Client, faulty, settings: Settings, redis_server: LocalRedis, tmp_path: Path
) -> None:
    from config.schema import new_job

    worker = faulty()
    specs = [new_job(f"job {i}", settings, steps=1, seed=i, **SMALL) for i in range(100)]
    assert len(client.submit_many(specs)) == 100
    r = redis.Redis.from_url(settings.redis_url)
    done = names.status_index(JobStatus.SUCCEEDED.value)
    wait_until(lambda: r.zcard(done) >= 3, 180, "the first jobs")

    redis_server.stop()  # SIGTERM: Redis writes its append-only file and exits
    redis_server.start()  # same port, same data folder

    def all_done() -> bool:
        try:
            return r.zcard(done) == 100
        except redis.ConnectionError:
            return False

    wait_until(all_done, 900, "all 100 jobs")
    assert worker.process.poll() is None  # reconnected by itself
    records = [client.store.get(s.id) for s in specs]
    assert all(rec.status is JobStatus.SUCCEEDED for rec in records)
    assert sorted(p.name for p in pngs(settings)) == sorted(f"{s.id}-00.png" for s in specs)
    total = sum(renders(tmp_path, s.id) for s in specs)
    attempts = sum(x.attempts for x in records)
    print(f"100 jobs across a Redis restart: {total} renders, {attempts} attempts")
    assert total <= 101  # at most the one job in flight at the restart is rendered again
    assert "appendonly is off" not in worker.tail(1_000_000)


@pytest.mark.slow
def test_redis_away_longer_than_the_workers_patience_gives_the_job_back(
    client: Client, faulty, redis_server: LocalRedis, tmp_path: Path
) -> None:
    # The render ends while Redis is down for longer than the worker waits for it: the
    # outcome cannot be recorded, so the message is rejected back to its queue instead of
    # acked (which would leave the record "started" for good). Once Redis is back, the
    # recovery sweep hands it out again and the next delivery finds the image on disk.
    faulty(NIGHTSHIFT_WORKER_REDIS_PATIENCE_S="1")
    job = client.submit("[slow] across an outage", seed=3, steps=20, **SMALL)
    wait_rendering(job)
    redis_server.stop()
    time.sleep(8)  # the slow render (0.2 s a step) ends meanwhile; patience is 1 s
    redis_server.start()

    record = job.wait(timeout=120)
    assert record.status is JobStatus.SUCCEEDED, record.error
    assert renders(tmp_path, job.id) == 1  # given back, then finished without a second render
    assert len(record.outputs) == 1 and Path(record.outputs[0]).is_file()


RISKY = ["--appendonly", "no", "--save", "", "--maxmemory-policy", "allkeys-lru"]


@pytest.fixture
def forgetful_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis set up the risky way: no append-only file, evicting under memory pressure."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with redis_server_with(url, "--port", str(port), "--dir", str(tmp_path), *RISKY):
        yield url


def test_the_worker_warns_when_the_brokers_redis_would_lose_jobs(
    forgetful_redis: str, settings: Settings, start_worker
) -> None:
    worker = start_worker(settings_=settings.model_copy(update={"redis_url": forgetful_redis}))
    wait_until(lambda: "maxmemory-policy" in worker.tail(1_000_000), 60, "the warning")
    log = worker.tail(1_000_000)
    assert "appendonly is off: a Redis crash loses queued jobs" in log
    assert "maxmemory-policy is allkeys-lru" in log


# 5. Graceful stop during a render.


@pytest.mark.slow
def test_sigterm_during_a_render_lets_the_job_finish_before_the_worker_exits(
    client: Client, faulty, settings: Settings
) -> None:
    worker = faulty()
    job = client.submit("[slow] finish me", steps=20, **SMALL)
    wait_rendering(job)
    worker.signal(signal.SIGTERM)
    worker.process.wait(300)

    record = job.record()
    assert record.status is JobStatus.SUCCEEDED
    assert record.attempts == 1
    assert [p.name for p in pngs(settings)] == [f"{job.id}-00.png"]


# 6. A render that hangs.


@pytest.mark.slow
def test_a_hanging_render_fails_at_the_time_limit_and_the_worker_takes_the_next_job(
    client: Client, faulty
) -> None:
    worker = faulty(NIGHTSHIFT_JOB_TIME_LIMIT_S="5")
    hung = client.submit("[hang] a render that never returns", steps=2, **SMALL)
    nxt = client.submit("the next one", steps=2, **SMALL)

    record = hung.wait(timeout=180)
    assert record.status is JobStatus.FAILED
    assert record.error == "time limit of 5 s exceeded"
    assert nxt.wait(timeout=180).status is JobStatus.SUCCEEDED
    assert worker.process.poll() is None


# 7. Results folder unwritable, disk full.


@pytest.mark.slow
def test_unwritable_results_or_a_full_disk_fail_the_job_and_leave_no_partial_file(
    client: Client, faulty, settings: Settings
) -> None:
    results = settings.results_path
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text("a file where the results folder should be")  # root ignores chmod
    worker = faulty()

    blocked = client.submit("nowhere to go", steps=2, **SMALL).wait(180)
    assert blocked.status is JobStatus.FAILED
    assert (blocked.error or "").startswith(f"cannot write results to {results}")
    results.unlink()

    full = client.submit("[disk-full] half a file", steps=2, **SMALL).wait(180)
    assert full.status is JobStatus.FAILED
    assert "No space left on device" in (full.error or "")
    assert [p for p in results.rglob("*") if p.is_file()] == []  # no partial PNG, no temp file

    fine = client.submit("room again", steps=2, **SMALL).wait(180)
    assert fine.status is JobStatus.SUCCEEDED
    assert worker.process.poll() is None


# 8. A crash after the image was written but before the ack.


@pytest.mark.slow
def test_a_job_redelivered_after_its_png_was_written_is_not_rendered_again(
    client: Client, faulty, settings: Settings, tmp_path: Path
) -> None:
    faulty()
    job = client.submit("[kill-after-save] nearly done", steps=2, **SMALL)
    record = job.wait(timeout=240)

    assert (tmp_path / f"killed-after-save-{job.id}-00.png").exists()  # the crash happened
    assert record.status is JobStatus.SUCCEEDED
    assert renders(tmp_path, job.id) == 1
    assert record.attempts == 1
    assert [p.name for p in pngs(settings)] == [f"{job.id}-00.png"]


# 9. Written behind the task: a crash after the ack, before the PNG is durable.


@pytest.mark.slow
def test_a_job_killed_after_its_ack_before_its_png_is_durable_renders_again_once(
    client: Client, faulty, settings: Settings, tmp_path: Path
) -> None:
    faulty()
    job = client.submit("[kill-before-write] rendered, acked, not written", steps=2, **SMALL)
    record = job.wait(timeout=240)

    # The child died in the thread that writes behind the task, once its message was acked.
    killed = tmp_path / f"killed-before-write-{job.id}-00.png"
    assert killed.read_text().startswith("nightshift-write")
    assert record.status is JobStatus.SUCCEEDED
    assert renders(tmp_path, job.id) == 2  # the copy the task kept was put back: once
    assert record.attempts == 2
    assert [p.name for p in pngs(settings)] == [f"{job.id}-00.png"]
    broker = redis.Redis.from_url(settings.redis_url)
    wait_until(lambda: broker.hlen(names.KOMBU_UNACKED) == 0, 30, "no message left unacked")


@pytest.mark.slow
def test_the_next_job_renders_while_the_last_ones_png_is_written(
    client: Client, faulty, settings: Settings
) -> None:
    faulty()
    first = client.submit("[slow-write] its file takes a second", steps=2, **SMALL)
    second = client.submit("renders meanwhile", steps=2, **SMALL)
    done_first, done_second = first.wait(timeout=120), second.wait(timeout=120)

    assert done_first.status is done_second.status is JobStatus.SUCCEEDED
    assert done_second.started_at is not None and done_first.finished_at is not None
    assert done_second.started_at < done_first.finished_at  # overlapped with the write
    assert all(Path(p).is_file() for p in done_first.outputs + done_second.outputs)
