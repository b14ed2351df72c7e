"""Move a waiting job to the front: the next job any worker takes.

Nothing is deleted from kombu's lists (a job's old message may sit anywhere: alone, or inside a
group message). Instead each move sends a new message whose spec counts one more move
(`JobSpec.moved`) at priority 0, at the head of that list, and then writes the count into the
record. A worker skips a message that carries fewer moves than the record (worker/jobs/run.py),
so the job renders once, from the newest message.

The order matters: message first, record second. A mover that dies between the two leaves a
message one move ahead of the record, which a worker adopts while the job waits; the other
order would leave a record that makes every message of the job stale.
"""

from __future__ import annotations

from celery import Celery

from config.errors import JobNotQueued
from config.records import JobRecord, JobStatus
from config.store import JobStore
from producer import enqueue

FRONT_PRIORITY = 0  # served first: kombu's priority_steps run 0..9 (config/celery_conf.py)


class _Moved(Exception):
    """Raised inside the compare-and-set to write nothing: the job started, or moved again."""

    def __init__(self, record: JobRecord) -> None:
        self.record = record


def move_to_front(app: Celery, store: JobStore, job_id: str) -> JobRecord:
    """Make a queued job the next one a worker takes; returns its record.

    JobNotFound for an unknown id, JobNotQueued for a job that no longer waits. A job that
    starts (or is moved by someone else) between the read and the write keeps its record as
    it is, and that record is returned; the message sent is then skipped by the worker.
    """
    record = store.get(job_id)
    if record.status is not JobStatus.QUEUED:
        raise JobNotQueued(job_id, record.status.value)
    moves = record.spec.moved + 1
    spec = record.spec.model_copy(update={"moved": moves, "priority": FRONT_PRIORITY})
    enqueue.send_front(app, store.redis, spec)
    try:
        return store.update(job_id, lambda r: _adopt(r, moves))
    except _Moved as moved:
        return moved.record


def _adopt(record: JobRecord, moves: int) -> None:
    if record.status is not JobStatus.QUEUED or record.spec.moved != moves - 1:
        raise _Moved(record)
    update = {"moved": moves, "priority": FRONT_PRIORITY}
    record.spec = record.spec.model_copy(update=update)
