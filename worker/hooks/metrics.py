"""Child: per-job counters for Prometheus, written once each job's outcome is recorded.

Counters live in one Redis hash (`nightshift:metrics`), so they survive worker restarts
and add up over several workers; `nightshift metrics` (producer/metrics.py) serves them.
The child also records its resident memory in its worker stats hash.
"""

from __future__ import annotations

import logging
from typing import Any

import psutil
from celery.signals import worker_process_init

from config import keys as names
from config.errors import ErrorCode, JobNotFound
from config.records import JobRecord, JobStatus
from config.settings import Settings
from config.store import scripts
from worker.jobs import afterjob

logger = logging.getLogger(__name__)


def failure_label(record: JobRecord) -> str:
    """The record's error code; "other" for a record without one (written before codes) or
    with a code this worker does not know, so the Prometheus label stays low-cardinality."""
    code = record.error_code or ""
    return code if code in {known.value for known in ErrorCode} else "other"


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
        fields[f"failures:{failure_label(record)}"] = 1
    return fields


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
    # Once per job (a redelivered job is not counted again), in one round trip.
    return bool(scripts.for_client(ctx.store.redis).count_once(keys=keys, args=args))


def record_memory(ctx: Any) -> None:
    ctx.store.redis.hset(ctx.stats_key, "rss_bytes", psutil.Process().memory_info().rss)


def install(app: Any, settings: Settings) -> None:
    afterjob.register(_after_job)
    worker_process_init.connect(_after_load, weak=False)


def _after_job(ctx: Any, payloads: list[afterjob.Payload]) -> None:
    for payload in payloads:
        count_job(ctx, str(payload["id"]))
    record_memory(ctx)


def _after_load(**_: Any) -> None:
    from worker import runtime

    try:
        record_memory(runtime.current())
    except Exception:
        logger.exception("could not record worker memory")
