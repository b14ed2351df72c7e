"""Batches on the producer side: submit once, then status, list, cancel and retry."""

from __future__ import annotations

import re
import secrets
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from config import keys as names
from config.images import InputImage
from config.records import JobStatus
from config.schema import JobSpec
from config.settings import Settings
from config.store import batches as bs
from config.store import control, inputs
from config.store.client import reachable, redis_client
from producer.batches import file as batchfile
from producer.client import Client, submit_grouped

HISTORY_JOBS = 200


@dataclass
class Submitted:
    batch_id: str
    total: int
    enqueued: int
    existing: bool
    enqueue_s: float = 0.0


def submit_batch(client: Client, path: Path, new: bool = False, grouped: bool = False) -> Submitted:
    """Expand the file and enqueue every job; the same file again returns the first batch.

    Every row is checked (inputs read, templates filled) before anything is written; the
    inputs reach the input store before any record or message. grouped: send the jobs as
    group messages (producer/enqueue.py), so a CUDA worker renders compatible jobs in one
    forward pass; each job keeps its own record, seed and file.
    """
    batch = batchfile.load(path)
    batch_id = new_batch_id(batch.name)
    made = batchfile.expand_batch(batch, client.settings, batch_id, client.catalog, client.loras)
    r = client.store.redis
    digest_key = names.batch_digest_key(made.digest)
    if not new and (known := r.get(digest_key)):
        return Submitted(str(known), bs.load_batch(r, str(known)).total, 0, True)
    # Before the claim: inputs are stored by content, so storing one twice is harmless, and a
    # claim must never name a batch whose inputs failed to arrive.
    store_inputs(client.settings, made.inputs)
    ttl = client.settings.record_ttl_s
    # Claimed before anything is written, so two submits racing make one batch, not two.
    if not r.set(digest_key, batch_id, nx=not new, ex=ttl):
        known = str(r.get(digest_key))
        return Submitted(known, bs.load_batch(r, known).total, 0, True)
    begin = time.perf_counter()
    _write_batch(client, batch, batch_id, made)
    specs = made.specs
    created = submit_grouped(client, specs) if grouped else client.submit_many(specs)
    return Submitted(batch_id, len(specs), len(created), False, time.perf_counter() - begin)


def store_inputs(settings: Settings, images: list[InputImage]) -> None:
    """Put a batch's init images and masks in the input store (their TTL restarts)."""
    if not images:
        return
    binary = redis_client(settings, binary=True)  # PNG bytes are not UTF-8
    try:
        with reachable():
            for image in images:
                inputs.put(binary, image, settings.input_ttl_s)
    finally:
        binary.close()


def new_batch_id(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:40] or "batch"
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _write_batch(
    client: Client, batch: batchfile.BatchFile, batch_id: str, made: batchfile.Expansion
) -> None:
    specs = made.specs
    first = specs[0]
    record = bs.BatchRecord(
        id=batch_id,
        name=batch.name,
        source=str(batch.path.resolve()),
        digest=made.digest,
        created_at=first.created_at,
        total=len(specs),
        priority=first.priority,
        queue=first.queue,
        expander=made.expander,
        notify=batch.notify,
    )
    ttl = client.settings.record_ttl_s
    with client.store.redis.pipeline() as pipe:
        pipe.hset(names.batch_key(batch_id), mapping={"record": record.model_dump_json()})
        pipe.hset(names.batch_key(batch_id), mapping={"total": len(specs), "reports": 0})
        ids = [s.id for s in specs]
        for start in range(0, len(ids), bs.READ_CHUNK):
            pipe.rpush(names.batch_jobs_key(batch_id), *ids[start : start + bs.READ_CHUNK])
        pipe.zadd(names.BATCHES_INDEX, {batch_id: record.created_at})
        for key in (names.batch_key(batch_id), names.batch_jobs_key(batch_id)):
            pipe.expire(key, ttl)
        pipe.execute()


def seconds_per_unit(client: Client) -> float | None:
    """Median seconds per step per megapixel per image, from jobs workers really rendered."""
    samples = [
        r.render_s / _units(r.spec)
        for r in client.jobs(JobStatus.SUCCEEDED, HISTORY_JOBS)
        if r.render_s is not None and r.render_s > 0
    ]
    return statistics.median(samples) if samples else None


def estimate_s(client: Client, specs: list[JobSpec]) -> float | None:
    rate = seconds_per_unit(client)
    return None if rate is None else rate * sum(_units(s) for s in specs)


def _units(spec: JobSpec) -> float:
    return spec.images * spec.steps * spec.width * spec.height / 1e6


@dataclass
class BatchStatus:
    batch: bs.BatchRecord
    counts: Counter = field(default_factory=Counter)
    images_done: int = 0
    first_start: float | None = None
    last_end: float | None = None
    reports: int = 0

    @property
    def ended(self) -> int:
        return sum(self.counts[s] for s in JobStatus if s.finished)

    @property
    def done(self) -> bool:
        return self.ended >= self.batch.total

    def images_per_minute(self) -> float | None:
        if self.first_start is None or self.last_end is None or not self.images_done:
            return None
        return self.images_done / max(self.last_end - self.first_start, 1e-3) * 60

    def eta_s(self) -> float | None:
        if self.done:
            return 0.0
        if self.first_start is None or self.last_end is None or not self.ended:
            return None
        per_job = (self.last_end - self.first_start) / self.ended
        return per_job * (self.batch.total - self.ended)


def batch_status(client: Client, batch_id: str) -> BatchStatus:
    r = client.store.redis
    status = BatchStatus(bs.load_batch(r, batch_id), reports=bs.report_count(r, batch_id))
    for record in bs.job_records(r, bs.job_ids(r, batch_id)):
        status.counts[record.status] += 1
        if record.status is JobStatus.SUCCEEDED:
            status.images_done += len(record.outputs)
        if record.started_at is not None:
            status.first_start = min(status.first_start or record.started_at, record.started_at)
        if record.finished_at is not None and record.started_at is not None:
            status.last_end = max(status.last_end or 0.0, record.finished_at)
    return status


def list_batches(client: Client, limit: int = 20) -> list[bs.BatchRecord]:
    r = client.store.redis
    ids = [str(i) for i in r.zrevrange(names.BATCHES_INDEX, 0, max(limit, 1) - 1)]
    return [bs.load_batch(r, i) for i in ids if r.exists(names.batch_key(i))]


def cancel_batch(client: Client, batch_id: str) -> Counter:
    """Queued jobs are cancelled at once; a running one stops at its next step."""
    r = client.store.redis
    bs.load_batch(r, batch_id)
    outcome: Counter = Counter()
    for record in bs.job_records(r, bs.job_ids(r, batch_id)):
        if not record.status.finished:
            outcome[client.cancel(record.id).status.value] += 1
    return outcome


def retry_batch(client: Client, batch_id: str, statuses: set[JobStatus]) -> int:
    """Queue again the jobs that ended with one of `statuses`; the report runs again after."""
    r = client.store.redis
    bs.load_batch(r, batch_id)
    again = [rec for rec in bs.job_records(r, bs.job_ids(r, batch_id)) if rec.status in statuses]
    for record in again:
        control.requeue(client.store, record.id)
    if again:
        # Forget that these ended, so the last of them to end triggers the report again.
        r.srem(names.batch_ended_key(batch_id), *[rec.id for rec in again])
        client.resend([rec.spec for rec in again])
    return len(again)
