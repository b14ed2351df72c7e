"""Names both sides must agree on: task names and Redis keys.

Kept apart from the Celery app so that a producer can read them without
importing anything heavy.
"""

from __future__ import annotations

RENDER_TASK = "nightshift.render"

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
