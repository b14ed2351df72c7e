"""Parent and child: Flower's revoke and terminate become cancels; the model stays loaded.

Revoke of a queued task: Celery skips the message when the worker picks it up and sends
`task_revoked` in the worker's parent process; we mark the record `cancelled` and, since
the task never runs its after-task hooks, count the job as ended here (metrics, and its
batch's end: the last job of a batch writes the morning report, a revoked one too).

Terminate of a running task: in the prefork pool the parent kills the child that runs it
(`pool.terminate_job(pid, SIGTERM)`), then sends `task_revoked(terminated=True)`. The
parent's handler sets the job's cancel key, exactly what `nightshift cancel` does. The
child traps SIGTERM while a job runs, waits briefly for that key, and, when it appears,
lets the renderer stop at its next denoising step instead of dying: the warmed model
stays loaded. Without the key (a cold shutdown of the worker, not a revoke) the child
exits as before, so an interrupted job is still requeued.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from types import FrameType
from typing import Any, NoReturn

from celery import current_task
from celery.exceptions import Ignore
from celery.signals import task_prerun, task_revoked

from config import keys as names
from config.errors import ErrorCode, JobNotFound
from config.settings import Settings
from config.store import JobStore, redis_client
from config.store.control import request_cancel
from worker.hooks.report import count_ended
from worker.jobs.messages import job_ids

logger = logging.getLogger(__name__)

REVOKED = "revoked before it started"


def end_as_revoked(task: Any) -> NoReturn:
    """End a task whose job was cancelled as REVOKED (Flower, result backend), not SUCCESS.

    Celery ranks SUCCESS above REVOKED, so a cancelled job returning normally would show
    as succeeded in Flower even after a terminate. Ignore acks the message, sends nothing.
    """
    task.backend.mark_as_revoked(task.request.id, "cancelled", request=task.request)
    task.send_event("task-revoked", terminated=False, signum=None, expired=False)
    raise Ignore()


def install(app: Any, settings: Settings) -> None:
    global _settings
    _settings = settings  # read by the SIGTERM handler, which gets no context of its own
    task_revoked.connect(functools.partial(_on_revoked, settings), weak=False)
    task_prerun.connect(_trap_terminate, weak=False)


_settings: Settings | None = None


def _on_revoked(
    settings: Settings,
    request: Any = None,
    terminated: bool = False,
    expired: bool = False,
    **_: Any,
) -> None:
    if expired or request is None:
        return  # expiry is the overnight window's business, not a cancel
    store = JobStore.from_settings(settings)
    for job_id in job_ids(request.args):
        try:
            record = request_cancel(
                store, job_id, settings.job_time_limit_s, REVOKED, ErrorCode.REVOKED
            )
        except JobNotFound:
            continue
        logger.info(
            "task %s revoked%s: job %s is %s",
            request.id,
            " (terminate)" if terminated else "",
            job_id,
            record.status.value,
        )
        if record.status.finished:  # a running job is counted by its own task when it stops
            count_ended(store, settings, record)


def _running_job_ids() -> list[str]:
    task = current_task
    if task is None or task.request is None:
        return []
    return job_ids(task.request.args)


# What SIGTERM did before we trapped it (billiard's cleanup-and-exit handler).
_previous: Any = signal.SIG_DFL


def _die(signum: int, frame: FrameType | None) -> None:
    if callable(_previous):
        _previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _cancel_requested(settings: Settings, ids: list[str]) -> bool:
    # A fresh connection: the interrupted code may be in the middle of a Redis command.
    client = redis_client(settings)
    keys = [names.cancel_key(i) for i in ids]
    try:
        deadline = time.monotonic() + settings.terminate_grace_s
        while time.monotonic() < deadline:
            if client.exists(*keys):
                return True
            time.sleep(0.02)
        return False
    finally:
        client.close()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    ids = _running_job_ids()
    if not ids or _settings is None or not _cancel_requested(_settings, ids):
        _die(signum, frame)
        return
    logger.info("terminate of %s: cancelling at the next step, model stays loaded", ids)


def _trap_terminate(**_: Any) -> None:
    # Installed at the first job, not in worker_process_init: billiard puts its own
    # SIGTERM handler back after the process initializer has run.
    global _previous
    current = signal.getsignal(signal.SIGTERM)
    if current is not _on_sigterm:
        _previous = current
        signal.signal(signal.SIGTERM, _on_sigterm)
