"""What goes into the outbox from the worker: a failed job's event, once per failed attempt.

Called after a job's task (the child, worker/hooks/notify.py) and by the parent for a job that
ended without its task running (worker/hooks/report.py count_ended). A worker that dies after
the failure was recorded and before this ran leaves its message unacked: the redelivered task
finds the record failed and calls this again, and the event id (`job-failed:<job>:<attempt>`)
makes that second write add nothing. A batch's end is written by the script that counts it.
"""

from __future__ import annotations

import redis

from config.records import JobRecord, JobStatus
from config.settings import Settings
from config.store import outbox


def note_failed(client: redis.Redis, settings: Settings, record: JobRecord) -> bool:
    """Put the job's "job failed" event in the outbox if it failed and anyone listens."""
    if record.status is not JobStatus.FAILED:
        return False
    if not record.spec.notify and not settings.notify_job_failed_targets:
        return False
    return outbox.add(client, outbox.job_failed(record.id, record.attempts), settings.record_ttl_s)
