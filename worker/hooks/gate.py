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
from celery.signals import task_received

from config.keys import model_queue
from config.models import Catalog
from config.settings import Settings
from config.store import control, redis_client
from config.store.broker import queue_depths
from config.window import Window
from worker.host import power
from worker.jobs.affinity import Waiting, choose_queues

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
    # The child loads the default model at start: until a job says otherwise, it holds that.
    held = Held(model_queue(settings.default_queue, Catalog.from_settings(settings).default))
    task_received.connect(held.note, weak=False)
    app.steps["consumer"].add(type("Gate", (Gate,), {"settings": settings, "held": held}))


class Held:
    """The queue of the last job this worker received: the model its child holds now."""

    def __init__(self, queue: str | None) -> None:
        self.queue = queue

    def note(self, request: Any = None, **_: Any) -> None:
        info = getattr(request, "delivery_info", None) or {}
        self.queue = info.get("routing_key") or self.queue


def waiting(client: redis.Redis, queues: list[str]) -> dict[str, Waiting]:
    """Per queue, the most urgent priority level with jobs waiting and how many wait there."""
    found: dict[str, Waiting] = dict.fromkeys(queues)
    for (queue, priority), count in sorted(queue_depths(client, queues).items()):
        if count and found[queue] is None:
            found[queue] = (priority, count)
    return found


class Gate(bootsteps.StartStopStep):
    """Consumer bootstep: opens and closes this worker's queues."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    # Bound by install(): a bootstep is built by Celery, not by us.
    settings: Settings
    held: Held

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        settings = self.settings
        self.window = settings.window
        self.redis = redis_client(settings)  # fails fast: this runs in the consumer's loop
        # The plain queues (messages from before models existed) and one per model this
        # worker's catalog holds: it never consumes a model it cannot load.
        models = Catalog.from_settings(settings).names
        self.queues = [*settings.queue_list]
        self.queues += [model_queue(q, m) for q in settings.queue_list for m in models]
        self.consuming: list[str] | None = None  # unknown until the first check
        self.released = False  # the child was recycled for this pause's memory release
        self.tref: Any = None

    def start(self, c: Any) -> None:
        # Unknown again: after a broker reconnect the consumer is rebuilt, and a queue
        # closed before it must be reopened (add_task_queue is a no-op when consuming).
        self.consuming = None
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
            wanted = [] if reason else self._choose()
        except redis.RedisError as exc:
            logger.warning("gate: cannot read the pause flag or the queues (%s); unchanged", exc)
            return
        if reason and not self.released and control.release_requested(self.redis):
            self._release_memory(c)
        self.released = self.released and bool(reason)
        if wanted == self.consuming:
            return
        if reason:
            logger.info("gate closed: %s; finishing the current job, taking no more", reason)
        elif not self.consuming:
            logger.info("gate open: taking jobs")
        self._consume(c, wanted)

    def _release_memory(self, c: Any) -> None:
        # A pool restart: the child exits after its current job (billiard's sentinel, as the
        # memory guard's recycling does), and the fresh child, seeing the release flag, loads
        # no model at start (worker/runtime.py). Its process memory goes back to the system.
        logger.info("paused with --release-memory: recycling the rendering process")
        c.controller.reload(modules=[], reload=False)
        self.released = True

    def _choose(self) -> list[str]:
        held = self.held.queue if self.held.queue in self.queues else None
        return choose_queues(waiting(self.redis, self.queues), held)

    def _consume(self, c: Any, wanted: list[str]) -> None:
        before = self.queues if self.consuming is None else self.consuming
        for queue in before:
            if queue not in wanted:
                c.cancel_task_queue(queue)
        # Opened in order: kombu pops the queues in the order they were added.
        for queue in wanted:
            if self.consuming is None or queue not in self.consuming:
                c.add_task_queue(queue)
        if wanted and len(wanted) < len(self.queues):
            logger.debug("gate: taking jobs from %s", ", ".join(wanted))
        self.consuming = wanted
