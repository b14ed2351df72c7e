"""Names both sides must agree on: task names and Redis keys.

Kept apart from the Celery app so that a producer can read them without
importing anything heavy.
"""

from __future__ import annotations

RENDER_TASK = "nightshift.render"
# One message, several compatible jobs (an overnight batch); the worker picks the pass size.
RENDER_GROUP_TASK = "nightshift.render_group"

KEY_PREFIX = "nightshift"


def job_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:job:{job_id}"


def job_channel(job_id: str) -> str:
    """Pub/sub channel on which every change of one job is announced."""
    return f"{KEY_PREFIX}:events:{job_id}"


def cancel_key(job_id: str) -> str:
    """Set while a cancel of a running job is pending; keyed by id, never stops another job."""
    return f"{KEY_PREFIX}:cancel:{job_id}"


JOBS_INDEX = f"{KEY_PREFIX}:jobs"


def status_index(status: str) -> str:
    return f"{KEY_PREFIX}:jobs:{status}"


def worker_key(hostname: str, pid: int) -> str:
    return f"{KEY_PREFIX}:worker:{hostname}:{pid}"


WORKERS_INDEX = f"{KEY_PREFIX}:workers"

# Hash of job counters for the Prometheus exporter (written by the worker after each job).
JOB_METRICS = f"{KEY_PREFIX}:metrics"


def metrics_counted_key(job_id: str) -> str:
    """Set once a finished job has been counted, so a redelivered job is not counted twice."""
    return f"{KEY_PREFIX}:metrics:counted:{job_id}"


def lease_key(job_id: str) -> str:
    """Set, with a short TTL, while a live worker holds the job's message (issue 3)."""
    return f"{KEY_PREFIX}:lease:{job_id}"


# Sorted set of job ids given up after too many attempts, scored by when (issue 3).
DEADLETTER = f"{KEY_PREFIX}:deadletter"
