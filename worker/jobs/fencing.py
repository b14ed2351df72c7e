"""Fencing: an attempt whose job another worker took over stops without writing anything.

A worker frozen longer than its lease (a Mac asleep, a SIGSTOP, a swap storm) looks dead to
the others: a sweep puts its message back (worker/hooks/leases.py) and another worker starts
the job again, `records.start` counting one more attempt. The frozen worker learns nothing
until it wakes. So the attempt `start` recorded (number, worker, pid) is a fencing token:
the step check (CancelCheck), each PNG write and every record write of the attempt compare
it with the record first, and a moved record raises Superseded; the task then ends quietly
and the newer attempt owns the job, its files and its record.

This child process holds the attempts it started, by job id (one job, or a group's jobs), so
the writes made outside run_job (the task's time limit and internal-error paths) are fenced
too, without a token passed through Celery. An attempt is let go once its outcome is
recorded; a superseded one is kept, so that nothing it tries later is written either.
"""

from __future__ import annotations

from config import records
from config.records import Attempt, JobRecord
from config.store import JobStore
from config.store.jobs import Mutation, Snapshot

_held: dict[str, Attempt] = {}


def hold(record: JobRecord) -> None:
    """Remember the attempt this process just started (the record `start` returned)."""
    _held[record.id] = records.attempt_of(record)


def release(job_id: str) -> None:
    _held.pop(job_id, None)


def verify(record: JobRecord) -> None:
    """Raise Superseded when this process's attempt on the job no longer holds it."""
    attempt = _held.get(record.id)
    if attempt is not None:
        records.check_held(record, attempt)


def check(store: JobStore, job_id: str) -> None:
    """verify against the stored record: before a file is written."""
    if job_id in _held:
        verify(store.get(job_id))


def fenced(mutate: Mutation) -> Mutation:
    """mutate, refused (Superseded; the compare-and-set never writes) for a lost attempt."""

    def guarded(record: JobRecord) -> None:
        verify(record)
        mutate(record)

    return guarded


def record_outcome(
    store: JobStore, job_id: str, mutate: Mutation, known: Snapshot | None = None
) -> JobRecord:
    """An attempt's last write, fenced; the attempt is let go once it is written (`known`:
    the caller's fresh read of the record, JobStore.update)."""
    done = store.update(job_id, fenced(mutate), known)
    release(job_id)
    return done
