"""Child: per-job counters for Prometheus, written once each job's outcome is recorded.

Counters live in one Redis hash (`nightshift:metrics`), so they survive worker restarts
and add up over several workers; `nightshift metrics` (producer/metrics.py) serves them.
The child also records its resident memory in its worker stats hash.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import psutil
import redis
from celery.signals import worker_process_init

from config import keys as names
from config.errors import ErrorCode
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


def count_job(client: redis.Redis, settings: Settings, record: JobRecord) -> bool:
    """Add a finished job to the counters; False when it is not finished or already counted."""
    if not record.status.finished:
        return False
    args: list[Any] = [settings.record_ttl_s]
    for field, amount in counter_fields(record).items():
        args += [field, amount]
    keys = [names.metrics_counted_key(record.id), names.JOB_METRICS]
    # Once per job (a redelivered job is not counted again), in one round trip.
    return bool(scripts.for_client(client).count_once(keys=keys, args=args))


class MemoryNote:
    """The child's resident memory in its stats hash, written when it moved by a MiB or more
    (or a minute passed): a figure for `nightshift status`, not worth a write every job."""

    STEP_BYTES = 1 << 20
    EVERY_S = 60.0

    def __init__(self) -> None:
        self.rss = -self.STEP_BYTES
        self.at = -math.inf

    def write(self, ctx: Any, force: bool = False) -> None:
        rss = psutil.Process().memory_info().rss
        now = time.monotonic()
        moved = abs(rss - self.rss) >= self.STEP_BYTES or now - self.at >= self.EVERY_S
        if force or moved:
            ctx.store.redis.hset(ctx.stats_key, "rss_bytes", rss)
            self.rss, self.at = rss, now


_memory = MemoryNote()


def install(app: Any, settings: Settings) -> None:
    afterjob.register(_after_job)
    worker_process_init.connect(_after_load, weak=False)


def _after_job(ctx: Any, found: list[JobRecord]) -> None:
    for record in found:
        count_job(ctx.store.redis, ctx.settings, record)
    _memory.write(ctx)


def _after_load(**_: Any) -> None:
    from worker import runtime

    try:
        _memory.write(runtime.current(), force=True)
    except Exception:
        logger.exception("could not record worker memory")
