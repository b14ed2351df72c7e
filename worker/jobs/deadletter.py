"""The dead-letter list: jobs given up after their worker process died too often.

A job that kills its worker (a segfault in a kernel, the OOM killer, a driver crash) is
redelivered each time; without a budget the worker would crash-loop on it all night and
the rest of the queue would starve. `records.start` counts attempts in the record; a job picked
up again while still `started` with the budget spent is failed with the reason and its id
is added to a sorted set, where `nightshift deadletter list|requeue` finds it.
"""

from __future__ import annotations

import logging
import time

from config import keys as names
from config import records
from config.records import JobRecord, JobStatus
from config.store import JobStore

logger = logging.getLogger(__name__)


def exhausted(record: JobRecord, max_attempts: int) -> bool:
    """True when every allowed attempt started and none reached an outcome."""
    return record.status is JobStatus.STARTED and record.attempts >= max_attempts


def give_up(store: JobStore, record: JobRecord, max_attempts: int) -> JobRecord:
    """Fail the job with the reason and put it on the dead-letter list."""
    now = time.time()
    # On the list before the record says failed: whoever sees the failure finds it listed
    # (and a death in between leaves it listed, to be given up again at the next delivery).
    store.redis.zadd(names.DEADLETTER, {record.id: now})
    failed = store.update(record.id, lambda r: records.give_up(r, max_attempts, now))
    logger.error("job %s: %s", record.id, failed.error)
    return failed
