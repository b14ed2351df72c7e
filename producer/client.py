"""The Python API: submit a job, get a handle, wait for its record."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any, TextIO

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from config import keys as names
from config.celery_conf import make_celery
from config.errors import BrokerUnavailable, WaitTimeout
from config.records import JobRecord, JobStatus
from config.schema import JobSpec, new_job
from config.settings import Settings
from config.store import JobStore
from producer import enqueue as bulk
from producer.console import ProgressBar


class Job:
    """A handle on one submitted job."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def record(self) -> JobRecord:
        return self.client.store.get(self.id)

    def cancel(self) -> JobRecord:
        return self.client.cancel(self.id)

    def wait(
        self, timeout: float = 600.0, progress: bool = False, stream: TextIO | None = None
    ) -> JobRecord:
        """Block until the job ends (succeeded, failed or cancelled); return its record.

        Listens on the job's channel, re-reading the record on every message and at
        least once a second, so a missed message only costs a second. progress=True
        draws a live bar per image on stream (default stderr).
        """
        deadline = time.monotonic() + timeout
        bar = ProgressBar(stream or sys.stderr) if progress else None
        pubsub = self.client.store.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(names.job_channel(self.id))
            while True:
                record = self.record()
                if bar is not None:
                    bar.show(record)
                if record.status.finished:
                    return record
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(
                        f"job {self.id} still {record.status.value} after {timeout:g} s"
                    )
                pubsub.get_message(timeout=min(left, 1.0))
        finally:
            pubsub.close()


class Client:
    """Producer side: validates with the shared schema, writes the record, enqueues."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or make_celery(settings)
        self.store = JobStore.from_settings(settings)

    @classmethod
    def from_env(cls, **overrides: Any) -> Client:
        return cls(Settings.from_env(**overrides))

    def submit(self, prompt: str, *, job_id: str | None = None, **params: Any) -> Job:
        """Validate and enqueue one job; an id that already exists returns that job, unchanged.

        params: negative_prompt, seed, steps, width, height, guidance, images,
        scheduler, priority, queue (None means the default from settings).
        """
        spec = new_job(prompt, self.settings, id=job_id, **params)
        record = JobRecord(spec=spec, created_at=spec.created_at)
        if not self.store.create(record):
            return Job(self, spec.id)
        try:
            self.send(spec)
        except BrokerUnavailable:
            self._forget(spec.id)  # no half-written job: the record goes with the message
            raise
        return Job(self, spec.id)

    def send(self, spec: JobSpec) -> None:
        """Put one job's message on its queue (its record must exist already)."""
        try:
            self.app.send_task(
                names.RENDER_TASK,
                args=[spec.model_dump(mode="json")],
                task_id=spec.id,
                queue=spec.queue,
                priority=spec.priority,
                argsrepr=task_summary(spec),
                kwargsrepr="",
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except (OperationalError, OSError) as exc:
            raise BrokerUnavailable(f"could not enqueue job {spec.id}: {exc}") from None

    def submit_many(self, specs: list[JobSpec], chunk: int = 1000) -> list[str]:
        """Enqueue many validated jobs fast; returns the ids that were new (others are kept).

        Records and messages go in pipelined chunks (see producer/bulk.py): 10,000 jobs
        take a second or two instead of the ten or more a loop of submit() needs.
        """
        created: list[str] = []
        for start in range(0, len(specs), chunk):
            part = specs[start : start + chunk]
            records = [JobRecord(spec=s, created_at=s.created_at) for s in part]
            created_ok = self.store.create_many(records)
            fresh = [s for s, ok in zip(part, created_ok, strict=True) if ok]
            try:
                self.resend(fresh)
            except BrokerUnavailable:
                for spec in fresh:
                    self._forget(spec.id)
                raise
            created += [s.id for s in fresh]
        return created

    def resend(self, specs: list[JobSpec]) -> None:
        """Enqueue messages for jobs whose records exist (submit_many, a batch retry).

        No `task-sent` events: Flower sees these jobs once a worker receives them.
        """
        messages = (bulk.envelope(self.app, s, task_summary(s)) for s in specs)
        try:
            bulk.push(self.store.redis, messages)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerUnavailable(f"could not enqueue {len(specs)} jobs: {exc}") from None

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job: a queued one at once, a running one at its next denoising step.

        The request is keyed by job id, so a late cancel can never stop the job after it.
        """

        def mark(record: JobRecord) -> None:
            if record.status is JobStatus.QUEUED:
                record.status = JobStatus.CANCELLED
                record.error = "cancelled before it started"
                record.finished_at = time.time()

        record = self.store.update(job_id, mark)
        if record.status is JobStatus.STARTED:
            self.store.redis.set(names.cancel_key(job_id), "1", ex=self.settings.job_time_limit_s)
        return record

    def job(self, job_id: str) -> Job:
        self.store.get(job_id)  # raises JobNotFound
        return Job(self, job_id)

    def jobs(self, status: JobStatus | None = None, limit: int = 20) -> list[JobRecord]:
        return self.store.recent(status, limit)

    def _forget(self, job_id: str) -> None:
        # Redis may have gone away between the two writes; then there is nothing to undo.
        with contextlib.suppress(BrokerUnavailable):
            self.store.delete(job_id)


# Flower shows argsrepr instead of the raw payload; long prompts are cut to keep rows short.
SUMMARY_PROMPT_CHARS = 60


def task_summary(spec: JobSpec) -> str:
    """One readable line for Flower: short prompt, seed, size, steps (never the whole payload)."""
    prompt = " ".join(spec.prompt.split())
    if len(prompt) > SUMMARY_PROMPT_CHARS:
        prompt = prompt[: SUMMARY_PROMPT_CHARS - 1] + "…"
    images = f", {spec.images} images" if spec.images > 1 else ""
    return f"{prompt!r} seed={spec.seed} {spec.width}x{spec.height} steps={spec.steps}{images}"


def record_json(record: JobRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False)
