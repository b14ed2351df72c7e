"""The Python API: submit a job, get a handle, wait for its record."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from celery import Celery

from config import keys as names
from config.celery_conf import make_celery
from config.errors import BrokerUnavailable, WaitTimeout
from config.models import Catalog, check_loras
from config.records import JobRecord, JobStatus
from config.schema import JobSpec, new_job
from config.settings import Settings
from config.store import JobStore, reachable
from config.store.control import request_cancel
from config.store.models import live_workers, merge_catalogs, merge_loras
from producer import enqueue, inputs, queue_front
from producer.console import ProgressBar


class Job:
    """A handle on one submitted job."""

    def __init__(self, client: Client, job_id: str, created: JobRecord | None = None) -> None:
        self.client = client
        self.id = job_id
        # The record as the submit that made this handle wrote it (the API answers it without
        # reading it back); None when that id was taken already. record() reads it anew.
        self.created = created

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def record(self) -> JobRecord:
        return self.client.store.get(self.id)

    def cancel(self) -> JobRecord:
        return self.client.cancel(self.id)

    def move_to_front(self) -> JobRecord:
        return self.client.move_to_front(self.id)

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


# How long a client trusts the catalog it read (its file, and the models workers publish).
CATALOG_REFRESH_S = 30.0


class Client:
    """Producer side: validates with the shared schema, writes the record, enqueues."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or make_celery(settings)
        self.store = JobStore.from_settings(settings)
        self._published: tuple[float, Catalog, dict[str, dict[str, Any]] | None] | None = None

    @property
    def catalog(self) -> Catalog:
        """The models a job may name: the local catalog over those live workers publish
        (config/models.py), re-read every CATALOG_REFRESH_S."""
        return self._refresh()[1]

    @property
    def loras(self) -> dict[str, dict[str, Any]] | None:
        """The LoRAs live workers can load (name -> family, workers...); None when no worker is
        online (config/models.py check_loras then leaves the question to the worker)."""
        return self._refresh()[2]

    def _refresh(self) -> tuple[float, Catalog, dict[str, dict[str, Any]] | None]:
        if self._published is None or time.monotonic() - self._published[0] > CATALOG_REFRESH_S:
            with reachable():
                workers = live_workers(self.store.redis)
            catalog = Catalog.from_settings(self.settings, merge_catalogs(workers))
            # None: no worker publishes anything yet, so no LoRA can be checked (not "none").
            loras = merge_loras(workers) if workers else None
            self._published = (time.monotonic(), catalog, loras)
        return self._published

    @classmethod
    def from_env(cls, **overrides: Any) -> Client:
        return cls(Settings.from_env(**overrides))

    def submit(self, prompt: str, *, job_id: str | None = None, **params: Any) -> Job:
        """Validate and enqueue one job; an id that already exists returns that job, unchanged.

        params: model (a catalog name, see `catalog`), negative_prompt, prompt_2 and
        negative_prompt_2 (SDXL only), seed, steps, width, height, guidance, images,
        scheduler, priority, queue, expires_at (this machine's clock, like the created_at
        stamped here: see on_redis_clock), loras ([{"name", "weight"}]; `<lora:name:w>` tags
        in the prompt too), init_image and mask (a pathlib.Path, bytes, or an input id),
        strength, hires ({"scale", "steps", "strength", "upscaler"}). None means the default:
        the catalog's model, then that model's entry and family, then settings; an init
        image's own size (fitted to the pixel budget) for width and height.
        """
        spec, staged = self.prepare(prompt, job_id=job_id, **params)
        inputs.store_all([staged], self.settings)
        spec = on_redis_clock(spec, self.clock_offset())
        record = self._record(spec)
        if not self.store.create(record):
            return Job(self, spec.id)
        try:
            self.send(spec)
        except BrokerUnavailable:
            self._forget([spec])  # no half-written job: the record goes with the message
            raise
        return Job(self, spec.id, record)

    def prepare(
        self, prompt: str, *, job_id: str | None = None, **params: Any
    ) -> tuple[JobSpec, inputs.Staged]:
        """Validate one job without queueing it: the spec, and its inputs checked but not yet
        stored (inputs.store_all puts them in the store before the job is queued)."""
        staged = inputs.check(params, self.settings)
        fields = {k: v for k, v in params.items() if k not in inputs.FIELDS}
        fields |= {f: staged.id_of(f) for f in inputs.FIELDS if staged.id_of(f)}
        size = inputs.size_of(staged)
        if size is not None and params.get("width") is None and params.get("height") is None:
            fitted = inputs.fitted_size(*size, self.settings.max_pixels)
            fields["width"], fields["height"] = fitted
        spec = new_job(prompt, self.settings, self.catalog, id=job_id, **fields)
        check_loras(spec, self.catalog.family_of(spec), self.loras)
        return spec, staged

    def submit_from(self, path: str | Path, *, vary_seed: int = 0, **overrides: Any) -> list[Job]:
        """Queue again the job that made a PNG: its Nightshift chunk, else its A1111
        `parameters` text (producer/replay.py); `overrides` win, and vary_seed=N adds N
        neighbours (seed+1 ... seed+N). Returns the jobs queued."""
        from producer.replay import submit_from  # replay imports this module

        return submit_from(self, path, vary_seed, **overrides)

    def send(self, spec: JobSpec) -> None:
        """Put one job's message on its queue (its record must exist already)."""
        enqueue.send(self.app, spec)

    def submit_many(self, specs: list[JobSpec], chunk: int = 1000) -> list[str]:
        """Enqueue many validated jobs fast; returns the ids that were new (others are kept).

        Records and messages go in pipelined chunks (see producer/enqueue.py): 10,000 jobs
        take a second or two instead of the ten or more a loop of submit() needs.
        """
        created: list[str] = []
        for start in range(0, len(specs), chunk):
            fresh = self._create(specs[start : start + chunk])
            try:
                self.resend(fresh)
            except BrokerUnavailable:
                self._forget(fresh)
                raise
            created += [s.id for s in fresh]
        return created

    def resend(self, specs: list[JobSpec]) -> None:
        """Enqueue messages for jobs whose records exist (submit_many, a batch retry).

        No `task-sent` events: Flower sees these jobs once a worker receives them.
        """
        enqueue.send_many(self.app, self.store.redis, specs)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job: a queued one at once, a running one at its next denoising step.

        The request is keyed by job id, so a late cancel can never stop the job after it.
        """
        ttl_s = self.settings.job_time_limit_s
        return request_cancel(self.store, job_id, ttl_s, "cancelled before it started")

    def move_to_front(self, job_id: str) -> JobRecord:
        """Make a queued job the next one a worker takes (producer/queue_front.py); its old
        messages are skipped. JobNotQueued once it has started or ended."""
        return queue_front.move_to_front(self.app, self.store, job_id)

    def job(self, job_id: str) -> Job:
        self.store.get(job_id)  # raises JobNotFound
        return Job(self, job_id)

    def jobs(self, status: JobStatus | None = None, limit: int = 20) -> list[JobRecord]:
        return self.store.recent(status, limit)

    def clock_offset(self) -> float:
        """How far the Redis server's clock is ahead of this machine's (negative: behind),
        measured against the middle of the round trip, in whole seconds: below a second the
        difference is the round trip's noise, not skew, and a date the user gave (`expires:
        2026-12-01T07:00`) must stay the time they wrote."""
        before = time.time()
        server = self.store.now()
        return float(round(server - (before + time.time()) / 2))

    def _create(self, specs: list[JobSpec]) -> list[JobSpec]:
        """Write the specs' records, dated on Redis's clock; returns the specs that were new
        (their ids were free), as written."""
        offset = self.clock_offset()
        specs = [on_redis_clock(s, offset) for s in specs]
        records = [self._record(s) for s in specs]
        return [s for s, ok in zip(specs, self.store.create_many(records), strict=True) if ok]

    def _record(self, spec: JobSpec) -> JobRecord:
        family = self.catalog.family_of(spec)
        return JobRecord(spec=spec, created_at=spec.created_at, model_family=family)

    def _forget(self, specs: list[JobSpec]) -> None:
        # Redis may have gone away between the two writes; then there is nothing to undo.
        with contextlib.suppress(BrokerUnavailable):
            for spec in specs:
                self.store.delete(spec.id)


def on_redis_clock(spec: JobSpec, offset: float) -> JobSpec:
    """The spec with its dates moved from this machine's clock onto the Redis server's.

    Workers read the time from Redis too (JobStore.now), so however wrong this machine's clock
    is, a job's queue wait is measured on one clock and `--expires 1h` means an hour.
    """
    dates = {"created_at": spec.created_at + offset}
    if spec.expires_at is not None:
        dates["expires_at"] = spec.expires_at + offset
    return spec.model_copy(update=dates)


def submit_grouped(
    client: Client, specs: list[JobSpec], group_size: int | None = None
) -> list[str]:
    """Enqueue jobs as group messages of at most group_size; returns the ids that were new.

    Each job still gets its own record, seed and file; a CUDA worker renders a group's
    compatible jobs in one forward pass (mps one at a time). Default size: max_group_size.
    """
    fresh = client._create(specs)
    size = group_size or client.settings.max_group_size
    enqueue.send_groups(client.app, fresh, size, unsent=client._forget)
    return [s.id for s in fresh]
