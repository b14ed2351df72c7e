"""Parent: pause, the overnight window, battery: whether this worker takes jobs right now.

The gate is a Celery consumer bootstep in the worker's main process, and the only code that
opens or closes the worker's queues. It re-reads the Redis pause flag, the local clock and
the power watcher's battery flag (worker/power.py) every `gate_poll_s` and stops or restarts
consuming the worker's queues with Celery's own consumer control (`cancel_task_queue`,
`add_task_queue`, what `celery control cancel_consumer` does). Why this way:
- with acks_late and prefetch 1 the only message a worker holds is the job it is
  rendering, so closing the consumer lets that job finish and leaves every other one
  in Redis, untouched, in priority order;
- rejecting messages at pickup instead would spin them through the queue all night;
- the flag lives in Redis, and the step closes the gate in `start`, before the event
  loop first fetches, so a paused worker that restarts takes nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import bootsteps

from config.settings import Settings
from config.store import control, redis_client
from config.window import Window
from worker.host import power

logger = logging.getLogger(__name__)


def closed_reason(
    client: redis.Redis, window: Window | None, local: time.struct_time, on_battery: bool = False
) -> str:
    """Why the worker must not take jobs now, or "" when it may."""
    if control.is_paused(client):
        return "paused (nightshift resume to continue)"
    if window is not None and not window.contains(local):
        return "outside the window"
    if on_battery:
        return "on battery power (NIGHTSHIFT_PAUSE_ON_BATTERY; resumes on AC)"
    return ""


def install(app: Any, settings: Settings) -> None:
    app.steps["consumer"].add(type("Gate", (Gate,), {"settings": settings}))


class Gate(bootsteps.StartStopStep):
    """Consumer bootstep: opens and closes this worker's queues."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    settings: Settings  # bound by install(): a bootstep is built by Celery, not by us

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        settings = self.settings
        self.window = settings.window
        self.redis = redis_client(settings)  # fails fast: this runs in the consumer's loop
        self.open: bool | None = None  # unknown until the first check
        self.tref: Any = None

    def start(self, c: Any) -> None:
        # Unknown again: after a broker reconnect the consumer is rebuilt, and a queue
        # closed before it must be reopened (add_task_queue is a no-op when consuming).
        self.open = None
        self.check(c)
        self.tref = c.timer.call_repeatedly(self.settings.gate_poll_s, self.check, (c,))

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def check(self, c: Any) -> None:
        try:
            reason = closed_reason(
                self.redis, self.window, time.localtime(), power.BATTERY_PAUSE.is_set()
            )
        except redis.RedisError as exc:
            logger.warning("gate: cannot read the pause flag (%s); unchanged", exc)
            return
        if reason and self.open is not False:
            logger.info("gate closed: %s; finishing the current job, taking no more", reason)
            for queue in self.settings.queue_list:
                c.cancel_task_queue(queue)
        elif not reason and self.open is not True:
            logger.info("gate open: taking jobs")
            for queue in self.settings.queue_list:
                c.add_task_queue(queue)
        self.open = not reason
