"""Control requests both sides share: cancel (the worker's revoke hook and the producer's
cancel), requeue (a batch retry, a dead-letter requeue) and pause."""

from __future__ import annotations

import time

import redis

from config import keys as names
from config import records
from config.errors import ErrorCode
from config.records import JobRecord, JobStatus
from config.store.jobs import JobStore


def request_cancel(
    store: JobStore,
    job_id: str,
    ttl_s: int,
    reason: str,
    code: ErrorCode = ErrorCode.CANCELLED,
) -> JobRecord:
    """Cancel a job: a queued one at once, a running one at its next denoising step.

    A running job only gets its cancel key, which its worker polls; the worker then records
    the cancel itself (records.stop). The key is per job id, so a late request can never
    stop the job after it, and ttl_s (the time limit) lets a stale one expire.
    """
    now = time.time()
    record = store.update(job_id, lambda r: records.cancel(r, reason, now, code))
    if record.status is JobStatus.STARTED:
        store.redis.set(names.cancel_key(job_id), "1", ex=ttl_s)
    return record


def requeue(store: JobStore, job_id: str, fresh_budget: bool = False) -> JobRecord:
    """A finished job -> queued again (fresh_budget: its attempts start from 0 too).

    Every path that queues a finished job again comes here, because the metrics count a
    job once (its `metrics:counted:<id>` marker, worker/hooks/metrics.py): the marker goes
    with the old outcome, so the next one is counted too. The caller sends the message
    after this returns.
    """
    record = store.update(job_id, records.reset if fresh_budget else records.requeue)
    store.redis.delete(names.metrics_counted_key(job_id))
    return record


# Pause: three small functions the CLI (nightshift pause|resume) and the worker's gate share.
# The flag is one key in Redis (config/keys.py PAUSE_KEY), so it survives worker restarts and
# holds every worker at once; its value says since when, in epoch seconds.


def pause(client: redis.Redis, now: float | None = None, release_memory: bool = False) -> None:
    """Workers finish their current job and take no more until resume(); release_memory:
    their rendering processes also give the models' memory back (the Mac's unified memory
    is then free for other work), and the first job after resume pays for the load."""
    with client.pipeline() as pipe:
        pipe.set(names.PAUSE_KEY, str(time.time() if now is None else now))
        if release_memory:
            pipe.set(names.PAUSE_RELEASE_KEY, "1")
        pipe.execute()


def resume(client: redis.Redis) -> bool:
    """Lift a pause (and its memory release); False when there was none."""
    return bool(client.delete(names.PAUSE_KEY, names.PAUSE_RELEASE_KEY))


def release_requested(client: redis.Redis) -> bool:
    """True while a pause asks workers to hold no model in memory."""
    return bool(client.exists(names.PAUSE_RELEASE_KEY))


def is_paused(client: redis.Redis) -> bool:
    return bool(client.exists(names.PAUSE_KEY))
