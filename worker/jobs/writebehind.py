"""Child: a single job's PNG encoded and written while the next job renders (issue 17).

One at a time on a fast GPU, PNG encoding (tens of milliseconds of zlib) and the records
after it were a sixth of every job. So the render task returns, and its message is
acknowledged, as soon as the pixels exist; one thread of this process then writes the files
(fenced and durable, as finish_job always did), records the job succeeded, and runs its
after-job handlers (worker/jobs/afterjob.py), while the next job renders.

Nothing is lost if the process dies in between. Before returning, the task copies its own
unacked message under a fresh delivery tag (`hold`, in kombu's `unacked` hash and index,
where kombu and the leases sweep look) and sets the job's lease; Celery's ack then removes
only the original. The copy is removed once the outcome is recorded (`let_go`). A process
killed in between leaves the copy, its lease runs out, and the leases sweep of any worker
(worker/hooks/leases.py) puts it back on its queue like any dead worker's message: the job
renders again, once (its record says started, and its file is not there; a file that did
get written is found by start_job and not rendered again).

At most one job is handed over at a time: a task that finds the previous write still running
waits for it, so memory holds one image more, never a queue of them. And the write waits for
the next render to start (`next_render`, at most NEXT_RENDER_WAIT_S): started at once, it
would hold the GIL through the few milliseconds between jobs that Celery needs (the ack, the
next message, the hand-off to this process), which is the very time it is meant to save.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import redis

from config import keys as names
from config.schema import JobSpec
from worker.jobs import afterjob
from worker.runtime import WorkerContext

logger = logging.getLogger(__name__)

# Writes a job's files and records its outcome (worker/jobs/run.py write_outcome): True once an
# outcome is recorded, False when none could be (Redis away).
Write = Callable[[], bool]

# How long a write waits for the next render before it runs anyway (an empty queue): the
# gap between two jobs is under 20 ms at the 99th percentile, even on a 2-core machine.
NEXT_RENDER_WAIT_S = 0.1

_pool: ThreadPoolExecutor | None = None
_rendering = threading.Event()  # set when a render starts: the time to write
_writing = threading.local()  # the job this thread writes, for its log lines (worker/logs.py)
_last: Future[None] | None = None
_last_id: str | None = None


def enabled(setting: bool | None, device: str) -> bool:
    """NIGHTSHIFT_WRITE_BEHIND: as set, else on wherever the render is not on the CPU."""
    return device != "cpu" if setting is None else setting


def hold(client: redis.Redis, tag: str, job_id: str, ttl_s: float) -> str | None:
    """Copy the unacked message `tag` under a fresh tag, with the job's lease; the new tag,
    or None when the message is not in `unacked` (then nothing can be deferred safely)."""
    raw = client.hget(names.KOMBU_UNACKED, tag)
    if raw is None:
        return None
    entry = json.loads(raw)  # [message, exchange, routing key], as kombu stores it
    copy = str(uuid.uuid4())
    entry[0]["properties"]["delivery_tag"] = copy
    owner = f"{socket.gethostname()}:{os.getpid()}:write"
    pipe = client.pipeline(transaction=True)
    pipe.hset(names.KOMBU_UNACKED, copy, json.dumps(entry))
    pipe.zadd(names.KOMBU_UNACKED_INDEX, {copy: time.time()})
    pipe.set(names.lease_key(job_id), owner, px=int(ttl_s * 1000))
    pipe.execute()
    return copy


def let_go(client: redis.Redis, tag: str) -> None:
    """Remove the copy `hold` made: the outcome is recorded. The lease just runs out."""
    pipe = client.pipeline(transaction=True)
    pipe.hdel(names.KOMBU_UNACKED, tag)
    pipe.zrem(names.KOMBU_UNACKED_INDEX, tag)
    pipe.execute()


def hand_over(ctx: WorkerContext, spec: JobSpec, delivery_tag: str, write: Write) -> bool:
    """Run `write` (the job's files and outcome) behind the task; False when it cannot be
    (the message is not where kombu keeps it, Redis away): then the caller writes."""
    global _last, _last_id
    wait()  # one at a time: the previous job's write and handlers first
    try:
        copy = hold(ctx.store.redis, delivery_tag, spec.id, ctx.settings.lease_ttl_s)
    except redis.RedisError as exc:
        logger.warning("job %s: writing in the task (%s)", spec.id, exc)
        return False
    if copy is None:
        return False
    afterjob.handed_over(spec.id)
    _rendering.clear()
    _last = _thread().submit(_write, ctx, spec, copy, write)
    _last_id = spec.id
    return True


def job_being_written() -> str | None:
    """The job whose write the calling thread runs; None on any other thread."""
    return getattr(_writing, "job_id", None)


def next_render() -> None:
    """A render is starting (worker/jobs/run.py, grouping.py): a write waiting may run now."""
    _rendering.set()


def later(note: Callable[[], None]) -> None:
    """Run a piece of bookkeeping (a note in a record, not a decision) on the same thread,
    after the write handed over: off the path between jobs, and in order with it."""
    global _last
    _last = _thread().submit(note)


def _thread() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nightshift-write")
    return _pool


def wait() -> None:
    """Until everything handed to the thread so far is done: the last job's write, its
    record and counters, the notes after it (the thread takes them in order)."""
    if _last is not None:
        try:
            _last.result()
        except Exception:  # _write records what it can; nothing of it may stop the next job
            logger.exception("job %s: writing behind its task failed", _last_id)


def wait_for(job_id: str) -> None:
    """wait, when the job being written is this one (a second message of it: its record must
    say succeeded before that message is looked at, or it would look like a crash)."""
    if _last_id == job_id:
        wait()


def _write(ctx: WorkerContext, spec: JobSpec, copy: str, write: Write) -> None:
    _writing.job_id = spec.id  # Celery's current task, which logs read, is the next job's
    try:
        _write_and_count(ctx, spec, copy, write)
    finally:
        _writing.job_id = None


def _write_and_count(ctx: WorkerContext, spec: JobSpec, copy: str, write: Write) -> None:
    _rendering.wait(NEXT_RENDER_WAIT_S)
    if not write():
        return  # no outcome recorded: the copy stays, and the sweep puts it back
    try:
        let_go(ctx.store.redis, copy)
    except redis.RedisError as exc:  # the sweep's restore then finds the job finished
        logger.warning("job %s: its message copy stays until the sweep: %s", spec.id, exc)
    afterjob.run(ctx, [spec.model_dump(mode="json")])
