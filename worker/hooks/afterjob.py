"""Child: the after-job handlers run after each task, and the write behind it is finished
before the process exits.

The handlers themselves (metrics, the batch's count, failure notices) are registered by the
hooks installed after this one (worker/jobs/afterjob.py); a job whose file is still being
written gets them from the write-behind thread instead (worker/jobs/writebehind.py). A
process that exits (warm shutdown, recycling by the memory guard) waits for that write: the
copy of its message it keeps would otherwise be put back and the job rendered again.
"""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, worker_process_shutdown

from config.settings import Settings
from worker.jobs import afterjob, writebehind
from worker.jobs.messages import job_payloads


def install(app: Any, settings: Settings) -> None:
    task_postrun.connect(_after_task, weak=False)
    worker_process_shutdown.connect(_flush, weak=False)


def _after_task(args: Any = None, **_: Any) -> None:
    from worker import runtime

    afterjob.after_task(runtime.current(), job_payloads(args))


def _flush(**_: Any) -> None:
    writebehind.wait()
