"""Power: keep the machine awake while work waits, pause taking jobs on battery.

There is no Mac here: `pmset -g batt` output is faked (literal text, or `cat` of a file the
test rewrites), and `caffeinate` is stood in for by `sleep`, a real process the watcher
starts and stops. Redis and the worker are real. Reading `pmset`, the pause policy and
keeping awake, which need no Redis, are tests/unit/test_power_policy.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from config.celery_conf import make_celery
from config.keys import PAUSE_KEY, model_queue
from config.records import JobStatus
from config.settings import Settings
from producer.client import Client
from worker.hooks.gate import Window, closed_reason
from worker.host.power import PowerWatcher, parse_pmset_batt, work_waiting

ON_BATTERY = """Now drawing from 'Battery Power'
 -InternalBattery-0 (id=4653155)	83%; discharging; 5:12 remaining present: true
"""
ON_AC = """Now drawing from 'AC Power'
 -InternalBattery-0 (id=4653155)	100%; charged; 0:00 remaining present: true
"""
STAND_IN_FOR_CAFFEINATE = "sleep 86400"


def test_work_waiting_sees_every_priority_list_and_the_running_job(settings: Settings) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    queue = settings.default_queue
    assert not work_waiting(r, [queue])
    r.rpush(f"{queue}:7", "a job at priority 7")
    assert work_waiting(r, [queue])
    r.delete(f"{queue}:7")
    r.hset("unacked", "tag", "a job being rendered")
    assert work_waiting(r, [queue])


def test_the_watcher_flags_a_battery_pause_and_stays_asleep_while_paused(
    settings: Settings,
) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    r.rpush(settings.default_queue, "a queued job")
    power = {"now": ON_BATTERY}
    pause = threading.Event()  # the watcher's own flag here, not the process-wide one
    watcher = PowerWatcher(
        settings.model_copy(update={"keep_awake_command": STAND_IN_FOR_CAFFEINATE}),
        r,
        read=lambda _command: parse_pmset_batt(power["now"]),
        pause=pause,
    )
    try:
        watcher.tick()
        assert pause.is_set() and not watcher.awake.holding  # paused: let it sleep
        power["now"] = ON_AC
        watcher.tick()
        assert not pause.is_set() and watcher.awake.holding  # work waits: stay awake
        r.delete(settings.default_queue)
        watcher.tick()
        assert not watcher.awake.holding
    finally:
        watcher.awake.release()


def test_the_gate_names_every_reason_to_stay_closed_and_a_pause_outranks_power(
    settings: Settings,
) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    noon = time.strptime("2026-11-27 12:00", "%Y-%m-%d %H:%M")
    night = Window.parse("22:00-07:00")
    assert closed_reason(r, None, noon) == ""
    assert closed_reason(r, None, noon, on_battery=True).startswith("on battery power")
    assert closed_reason(r, night, noon, on_battery=True) == "outside the window"
    r.set(PAUSE_KEY, 1)
    try:  # back on AC while the user has paused: still closed, for the pause
        assert closed_reason(r, None, noon).startswith("paused")
        assert closed_reason(r, None, noon, on_battery=True).startswith("paused")
    finally:
        r.delete(PAUSE_KEY)


def consumed_queues(settings: Settings) -> set[str] | None:
    """Queues the worker consumes now, as it answers itself; None if it did not answer.

    One app, closed after each question: a new app's pooled connections would otherwise stay
    open for the rest of the session, one set per poll, and a dropped connection is only an
    unanswered question to a poll that asks again.
    """
    app = make_celery(settings)
    try:
        replies = app.control.inspect(timeout=5.0).active_queues()
    except redis.ConnectionError:
        return None
    finally:
        app.close()
    if not replies:
        return None
    return {q["name"] for queues in replies.values() for q in queues}


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_real_worker_stops_taking_jobs_on_battery_and_resumes_on_ac(
    settings: Settings, start_worker: Callable[..., Any], tmp_path: Path
) -> None:
    pmset = tmp_path / "pmset.txt"
    pmset.write_text(ON_BATTERY)
    faked = settings.model_copy(
        update={
            "power_status_command": f"cat {pmset}",
            "keep_awake_command": STAND_IN_FOR_CAFFEINATE,
            "power_poll_s": 0.2,
        }
    )
    worker = start_worker(settings_=faked)
    queue = faked.default_queue
    try:
        wait_until(lambda: consumed_queues(faked) == set(), "the worker to stop consuming")
    except AssertionError as exc:
        seen = consumed_queues(faked)
        raise AssertionError(f"{exc}; consuming {seen}\n{worker.tail()}") from None

    client = Client(faked)
    job = client.submit("rendered once the mac is plugged in", steps=2, width=64, height=64)
    time.sleep(2.0)  # not a timing assertion: a paused worker must not touch the job at all
    assert job.record().status is JobStatus.QUEUED

    # Plugged in while the user has paused the queue: power must not override that pause.
    r = redis.Redis.from_url(faked.redis_url)
    r.set(PAUSE_KEY, 1)
    pmset.write_text(ON_AC)
    wait_until(lambda: "back on AC" in worker.tail(20_000), "the watcher to see AC power")
    assert consumed_queues(faked) == set()
    assert job.record().status is JobStatus.QUEUED

    r.delete(PAUSE_KEY)
    record = job.wait(timeout=180)
    assert record.status is JobStatus.SUCCEEDED
    # Idle again, the gate opens every queue it has: the plain one and its model's.
    everything = {queue, model_queue(queue, "default")}
    wait_until(lambda: consumed_queues(faked) == everything, "the worker to consume again")
    log = worker.tail(20_000)
    assert "on battery: pausing taking jobs" in log
    assert "back on AC: resuming taking jobs" in log
    assert "keeping the machine awake (sleep 86400)" in log
