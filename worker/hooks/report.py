"""Child: count finished batch jobs as they end; the last one writes the morning report.

Counting is a set, not a counter (config/store/batches.py): a job that ends twice (a
redelivered message finding its record already final) is added once, so exactly one job
can make the set reach the batch's size, and exactly that one writes the report.

Every way a job ends is counted: through its task (success, failure, time limit, expiry,
dead letter, a cancel of a queued job, whose message still runs) once its outcome is
recorded, here (after its task, or after its file was written behind it: afterjob.py);
without its task running, by the parent that ended it (`count_ended`): a revoked message
Celery discards (worker/hooks/revoke.py), a message refused at the door (inbound.py).
`count_ended` also notes such a job's failure for notification (worker/notify/events.py; the
child's after-task hook, worker/hooks/notify.py, notes the others).
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from config.records import JobRecord
from config.settings import Settings
from config.store import JobStore
from config.store import batches as bs
from worker.hooks.metrics import count_job
from worker.jobs import afterjob
from worker.notify.events import note_failed
from worker.report.writer import write_report

logger = logging.getLogger(__name__)


def install(app: Any, settings: Settings) -> None:
    afterjob.register(_after_job)


def _after_job(ctx: Any, found: list[JobRecord]) -> None:
    for record in found:
        job_ended(ctx.store.redis, ctx.settings, record)


def job_ended(client: redis.Redis, settings: Settings, record: JobRecord) -> None:
    """Count a finished batch job; write the report if it was the batch's last."""
    batch_id = record.spec.batch_id
    if not batch_id or not record.status.finished:
        return  # not a batch's; or requeued (worker lost, time limit): counts later
    try:
        if bs.note_job_ended(client, batch_id, record.id, settings.record_ttl_s):
            logger.info("batch %s ended with job %s: writing its report", batch_id, record.id)
            write_report(client, settings, batch_id)
    except Exception:
        # A report failure must never fail or requeue the job that triggered it.
        logger.exception("could not write the report of batch %s", batch_id)


def count_ended(store: JobStore, settings: Settings, record: JobRecord) -> None:
    """A job that ended without its task running: into the metrics and its batch's end, as
    the child's after-task hooks do for every other job (both count a job once)."""
    try:
        count_job(store.redis, settings, record)
    except Exception:  # metrics must never stop the batch's count
        logger.exception("could not update job metrics for job %s", record.id)
    try:
        note_failed(store.redis, settings, record)
    except Exception:  # a notification must never stop the batch's count
        logger.exception("could not note the failure of job %s for notification", record.id)
    job_ended(store.redis, settings, record)
