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

from celery.signals import worker_ready, worker_shutdown

from config.records import JobRecord
from config.settings import Settings
from worker.jobs import afterjob
from worker.notify.events import note_failed
from worker.notify.sender import Sender, started

logger = logging.getLogger(__name__)


def install(app: Any, settings: Settings) -> None:
    hooks = _NotifyHooks(settings)
    worker_ready.connect(hooks.start_sender, weak=False)
    worker_shutdown.connect(hooks.stop_sender, weak=False)
    afterjob.register(_after_job)


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


def _after_job(ctx: Any, found: list[JobRecord]) -> None:
    for record in found:
        note_failed(ctx.store.redis, ctx.settings, record)
