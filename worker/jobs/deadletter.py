"""The dead-letter list: jobs given up after their worker process died too often.

A job that kills its worker (a segfault in a kernel, the OOM killer, a driver crash) is
redelivered each time; without a budget the worker would crash-loop on it all night and
the rest of the queue would starve. `_start` counts attempts in the record; a job picked
up again while still `started` with the budget spent is failed with the reason and its id
is added to a sorted set, where `nightshift deadletter list|requeue` finds it.
"""

from __future__ import annotations

import logging
import time

from config import keys as names
from config.records import JobRecord, JobStatus
from config.store import JobStore

logger = logging.getLogger(__name__)


def exhausted(record: JobRecord, max_attempts: int) -> bool:
    """True when every allowed attempt started and none reached an outcome."""
    return record.status is JobStatus.STARTED and record.attempts >= max_attempts


def give_up(store: JobStore, record: JobRecord, max_attempts: int) -> JobRecord:
    """Fail the job with the reason and put it on the dead-letter list."""
    reason = (
        f"the worker process died during each of its {record.attempts} attempts "
        f"(max_attempts {max_attempts}); moved to the dead-letter list"
    )

    def mark(r: JobRecord) -> None:
        r.status = JobStatus.FAILED
        r.error = reason
        r.finished_at = time.time()

    failed = store.update(record.id, mark)
    store.redis.zadd(names.DEADLETTER, {record.id: failed.finished_at or time.time()})
    logger.error("job %s: %s", record.id, reason)
    return failed
