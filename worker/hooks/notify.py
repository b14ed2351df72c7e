"""Parent and child: notifications. The child puts a failed job's event in the outbox after
its task; the parent runs the sender that delivers the outbox (worker/notify/sender.py).

A job that ends without its task running is the parent's to note (report.py count_ended); a
batch's end is written by the script that counts it (config/store/batches.py).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery.signals import task_postrun, worker_ready, worker_shutdown

from config.errors import JobNotFound
from config.settings import Settings
from worker.jobs.messages import job_ids
from worker.notify.events import note_failed
from worker.notify.sender import Sender, started

logger = logging.getLogger(__name__)


def install(app: Any, settings: Settings) -> None:
    hooks = _NotifyHooks(settings)
    worker_ready.connect(hooks.start_sender, weak=False)
    worker_shutdown.connect(hooks.stop_sender, weak=False)
    task_postrun.connect(_after_task, weak=False)


class _NotifyHooks:
    """The parent's sender, started once the worker is ready, stopped at its shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sender: Sender | None = None

    def start_sender(self, **_: Any) -> None:
        self.sender = started(self.settings, f"{socket.gethostname()}:{os.getpid()}")

    def stop_sender(self, **_: Any) -> None:
        if self.sender is not None:
            self.sender.stop()


def _after_task(task_id: str | None = None, args: Any = None, **_: Any) -> None:
    from worker import runtime

    try:
        ctx = runtime.current()
        for job_id in job_ids(args):
            try:
                note_failed(ctx.store.redis, ctx.settings, ctx.store.get(job_id))
            except JobNotFound:
                continue
    except Exception:  # a notification must never fail or requeue the job
        logger.exception("could not note the failure of task %s for notification", task_id)
