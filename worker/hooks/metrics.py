"""Per-job counters for Prometheus, written by the rendering child after each job.

Counters live in one Redis hash (`nightshift:metrics`), so they survive worker restarts
and add up over several workers; `nightshift metrics` (producer/metrics.py) serves them.
The child also records its resident memory in its worker stats hash.
"""

from __future__ import annotations

import logging
from typing import Any

import psutil
from celery.signals import task_postrun, worker_process_init

from config import keys as names
from config.errors import JobNotFound
from config.records import JobRecord, JobStatus

logger = logging.getLogger(__name__)

# Failure reasons are a small fixed set, so the Prometheus label stays low-cardinality.
REASONS = (
    ("time limit", "time_limit"),
    ("non-finite", "non_finite"),
    ("all-black", "black_image"),
    ("out of memory", "out_of_memory"),
    ("cannot write results", "results_dir"),
    ("internal error", "internal"),
)


def failure_reason(error: str | None) -> str:
    text = (error or "").lower()
    return next((label for needle, label in REASONS if needle in text), "other")


def counter_fields(record: JobRecord) -> dict[str, float]:
    """The increments one finished job adds to the counters hash (metric names, no _total)."""
    fields: dict[str, float] = {f"jobs_finished:{record.status.value}": 1}
    if record.queue_wait_s is not None:
        fields["queue_wait_seconds"] = record.queue_wait_s
        fields["started"] = 1
    if record.status is JobStatus.SUCCEEDED and record.render_s is not None:
        fields["images"] = len(record.outputs)
        fields["render_seconds"] = record.render_s
    if record.status is JobStatus.FAILED:
        fields[f"failures:{failure_reason(record.error)}"] = 1
    return fields


# Count a job once (a redelivered job is not counted again), in one round trip.
# KEYS: counted marker, counters hash; ARGV: marker TTL, then field, amount pairs.
_COUNT_ONCE_LUA = """
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) then
  for i = 2, #ARGV, 2 do
    redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  return 1
end
return 0
"""


def count_job(ctx: Any, job_id: str) -> bool:
    """Add a finished job to the counters; False when it is not finished or already counted."""
    try:
        record = ctx.store.get(job_id)
    except JobNotFound:
        return False
    if not record.status.finished:
        return False
    args: list[Any] = [ctx.settings.record_ttl_s]
    for field, amount in counter_fields(record).items():
        args += [field, amount]
    keys = [names.metrics_counted_key(job_id), names.JOB_METRICS]
    return bool(ctx.store.redis.eval(_COUNT_ONCE_LUA, len(keys), *keys, *args))


def record_memory(ctx: Any) -> None:
    ctx.store.redis.hset(ctx.stats_key, "rss_bytes", psutil.Process().memory_info().rss)


@task_postrun.connect
def _after_job(task_id: str | None = None, args: Any = None, **_: Any) -> None:
    from worker import runtime
    from worker.hooks.revoke import job_ids

    try:
        ctx = runtime.current()
        for job_id in job_ids(args):
            count_job(ctx, job_id)
        record_memory(ctx)
    except Exception:  # metrics must never fail a job
        logger.exception("could not update job metrics for task %s", task_id)


@worker_process_init.connect
def _after_load(**_: Any) -> None:
    from worker import runtime

    try:
        record_memory(runtime.current())
    except Exception:
        logger.exception("could not record worker memory")
