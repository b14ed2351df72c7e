"""Job records: a job's status and its whole story, and every transition between statuses.

A record lives in Redis under `nightshift:job:<id>` (config/store/jobs.py writes it). Its
status changes only through the functions below: one owner per transition, as rq's job.py
does it. Each is a mutation for `JobStore.update(job_id, mutate)`, which may call it again on
a fresh copy when another writer got there first: so they take `now` from the caller and
decide only from the record they are given.

    queued  --start-->   started  --succeed-->  succeeded
    queued  --cancel-->  cancelled   (a cancel request, or not started before expires_at)
    started --stop-->    cancelled   (the worker stopped at a cancel request)
    any     --fail-->    failed      (give_up: the dead-letter kind)
    ended   --requeue--> queued      (a retry; reset: also a fresh attempt budget)

After `start`, every write of that attempt (progress, succeed, fail, stop) is fenced by
`check_held`: a worker that slept past its lease finds a newer attempt and writes nothing.

What people and tools read is not the stored record but its view, `RecordView`: the fields
reached for first at the top (`jq .id`), the whole record under them, and a JSON Schema
(`nightshift schema record`). Redis keeps `JobRecord.to_json()`, which this never changes.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from config.errors import ErrorCode, Superseded
from config.schema import JobSpec


class JobStatus(str, Enum):
    QUEUED = "queued"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class RenderInfo(BaseModel):
    """What the worker knows about how a job was rendered."""

    worker: str = ""
    pid: int = 0
    device: str = ""
    dtype: str = ""
    model: str = ""
    sampler: str = ""
    attention_slicing: bool = False
    retried_safer: bool = False
    nsfw: list[bool] = Field(default_factory=list)
    # The memory guard's verdict after the job: "", "ok", "emptied_cache" or "recycled".
    memory_action: str = ""
    memory_mb: dict[str, float] = Field(default_factory=dict)
    # Seconds this job waited for its model to load (None: the model was loaded already).
    model_load_s: float | None = None


class Delivery(BaseModel):
    """The outcome of one notification to one target (worker/notify/): kept with the job or
    the batch it was about. `target` is redacted (config/notify_targets.py), never the URL."""

    event: str  # the event id receivers deduplicate on, e.g. job-failed:<id>:<attempt>
    target: str
    target_key: str
    ok: bool
    status: int | None = None  # the webhook's HTTP status of the last try
    attempts: int = 0
    error: str | None = None
    at: float = 0.0


# Outcomes kept per job, newest last: a job that fails again and again keeps the recent ones.
MAX_DELIVERIES = 50


class JobRecord(BaseModel):
    """A job's whole story, kept in Redis under nightshift:job:<id>."""

    # pydantic's JSON parser caches the strings it reads (16,384 of them, per process): a
    # worker reads each job's record a few times, and its values (id, prompt, paths) are new
    # every job, so the cache filled up over the first thousands of jobs and read as a leak
    # (+1.3 KB a job in the worker, issue 17). The field names repeat: cache only those.
    model_config = ConfigDict(cache_strings="keys")

    spec: JobSpec
    status: JobStatus = JobStatus.QUEUED
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    queue_wait_s: float | None = None
    render_s: float | None = None
    outputs: list[str] = Field(default_factory=list)
    error: str | None = None
    # An ErrorCode value beside the message; records written before codes existed have none.
    error_code: str | None = None
    attempts: int = 0
    progress: dict[str, int] = Field(default_factory=dict)
    render: RenderInfo = Field(default_factory=RenderInfo)
    # The family of spec.model at submit ("sd15", "sd2", "sdxl"); records written before models
    # existed, and jobs of a model the producer could not place, have none.
    model_family: str | None = None
    # Notifications sent about this job (note_delivery), one per event and target.
    notifications: list[Delivery] = Field(default_factory=list)

    @property
    def id(self) -> str:
        return self.spec.id

    def to_json(self) -> str:
        return self.model_dump_json()

    def to_json_line(self) -> str:
        """One line of JSON for people and tools (--json, the batch manifest): the public
        view (RecordView), in UTF-8 text, not ASCII escapes, so prompts in any script stay
        readable."""
        return json_line(RecordView.of(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> JobRecord:
        return cls.model_validate_json(raw)


# The dialect pydantic's model_json_schema writes; stated, so validators need not guess.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# A view's top level is closed: a field added to it must be added to its schema too.
PUBLISHED = ConfigDict(extra="forbid")


class RecordView(BaseModel):
    """A Nightshift job record as `--json` prints it (submit, status, jobs, deadletter list)
    and the batch manifest holds it: one object a line.

    The top level holds the fields people reach for first; `spec` (the job as submitted) and
    `render` (how a worker rendered it) keep the whole detail. Times are Unix seconds by the
    Redis server's clock. A field is never left out: it is null when not known (yet).
    """

    model_config = PUBLISHED | ConfigDict(title="Nightshift job record")

    id: str = Field(description="the job id (also the start of its images' file names)")
    status: JobStatus
    prompt: str
    negative_prompt: str
    model: str | None = Field(
        description="the catalog name it renders with; null: a job from before models existed, "
        "rendered with its worker's default"
    )
    model_family: str | None = Field(
        description="the model's family; null when unknown", examples=["sd15", "sd2", "sdxl"]
    )
    seed: int = Field(description="the first image's seed; image i has seed + i")
    images: int = Field(description="how many images the job makes")
    width: int = Field(description="the images' width in pixels (after a hires pass, if any)")
    height: int = Field(description="the images' height in pixels (after a hires pass, if any)")
    batch_id: str | None = Field(description="the batch it belongs to; null when submitted alone")
    outputs: list[str] = Field(description="the PNG files written, once succeeded")
    error: str | None = Field(description="why it failed or was cancelled, for people")
    error_code: str | None = Field(
        description="the same as a fixed code, for scripts and metrics; null before codes existed",
        examples=[code.value for code in ErrorCode],
    )
    created_at: float
    started_at: float | None = Field(description="when its last attempt started")
    finished_at: float | None
    queue_wait_s: float | None = Field(description="seconds from created to (last) started")
    render_s: float | None = Field(description="seconds the render took")
    attempts: int = Field(description="attempts started, retries and redeliveries included")
    progress: dict[str, int] = Field(
        description="the last step published: image (1-based), images, step, steps; {} "
        "before the first"
    )
    spec: JobSpec = Field(description="the whole job as submitted (the task message's payload)")
    render: RenderInfo = Field(description="how and where a worker rendered it")

    @classmethod
    def of(cls, record: JobRecord) -> RecordView:
        spec = record.spec
        width, height = spec.final_size()
        return cls(
            id=spec.id,
            status=record.status,
            prompt=spec.prompt,
            negative_prompt=spec.negative_prompt,
            model=spec.model,
            model_family=record.model_family,
            seed=spec.seed,
            images=spec.images,
            width=width,
            height=height,
            batch_id=spec.batch_id,
            outputs=record.outputs,
            error=record.error,
            error_code=record.error_code,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            queue_wait_s=record.queue_wait_s,
            render_s=record.render_s,
            attempts=record.attempts,
            progress=record.progress,
            spec=spec,
            render=record.render,
        )


class EveryFieldPrinted(GenerateJsonSchema):
    """A view is dumped whole, a field at its default included, in nested models too (spec,
    render): so the schema requires every field, and a script may rely on each key being
    there. pydantic's own switch for this (json_schema_serialization_defaults_required)
    reaches only the models whose config sets it, not JobSpec or RenderInfo."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        return self.mode == "serialization" or super().field_is_required(field, total)


def json_line(view: BaseModel) -> str:
    """A view as every --json prints it: one line, UTF-8 text rather than ASCII escapes."""
    return json.dumps(view.model_dump(mode="json"), ensure_ascii=False)


def schema_of(view: type[BaseModel]) -> dict[str, Any]:
    """A view's JSON Schema as published: of what is printed (serialization), dialect first."""
    schema = view.model_json_schema(mode="serialization", schema_generator=EveryFieldPrinted)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def view_schema() -> dict[str, Any]:
    """The JSON Schema of every record `--json` prints (`nightshift schema record`)."""
    return schema_of(RecordView)


class Attempt(NamedTuple):
    """Who holds a started job: the attempt `start` counted and the process rendering it.

    The fencing token of every write that attempt makes (worker/jobs/fencing.py): a worker
    that slept past its lease finds another attempt in the record and writes nothing.
    """

    number: int
    worker: str
    pid: int


def attempt_of(record: JobRecord) -> Attempt:
    return Attempt(record.attempts, record.render.worker, record.render.pid)


def check_held(record: JobRecord, attempt: Attempt) -> None:
    """Raise Superseded unless `attempt` still holds the job: started, by that very attempt.

    Another worker's `start` (after this one's lease lapsed) counted a new attempt; any other
    end meanwhile (images found on disk, the dead-letter list) ended this attempt too.
    """
    holder = attempt_of(record)
    if record.status is JobStatus.STARTED and holder == attempt:
        return
    where = f"{holder.worker} pid {holder.pid}"
    raise Superseded(record.id, holder.number, where, record.status.value)


def start(record: JobRecord, render: RenderInfo, now: float) -> None:
    """queued (or started, redelivered after its worker died) -> started: one more attempt.

    `now` and created_at are both read from the Redis server's clock (JobStore.now); the wait
    is clamped at zero all the same, so a date from a skewed clock never makes it negative.
    """
    record.status = JobStatus.STARTED
    record.started_at = now
    record.queue_wait_s = round(max(0.0, now - record.created_at), 3)
    record.attempts += 1
    _clear_error(record)
    record.render = render
    record.progress = {}  # a new attempt renders from scratch: the last one's steps are gone


def succeed(
    record: JobRecord, outputs: list[str], now: float, progress: dict[str, int] | None = None
) -> None:
    """started -> succeeded, with its files (and the last step's progress, when given)."""
    _finish(record, JobStatus.SUCCEEDED, now)
    _clear_error(record)
    record.outputs = outputs
    if progress:
        record.progress = progress


def fail(record: JobRecord, error: str, code: ErrorCode, now: float) -> None:
    """-> failed, with the reason for people and the code for metrics and scripts."""
    _finish(record, JobStatus.FAILED, now)
    _set_error(record, error, code)


def give_up(record: JobRecord, max_attempts: int, now: float) -> None:
    """started -> failed for good: every allowed attempt killed its worker (dead letter)."""
    reason = (
        f"the worker process died during each of its {record.attempts} attempts "
        f"(max_attempts {max_attempts}); moved to the dead-letter list"
    )
    fail(record, reason, ErrorCode.DEAD_LETTER, now)


def cancel(
    record: JobRecord, reason: str, now: float, code: ErrorCode = ErrorCode.CANCELLED
) -> None:
    """queued -> cancelled; any other status is left alone (a started job is stopped by its
    worker, see `stop`; a finished one stays as it ended)."""
    if record.status is not JobStatus.QUEUED:
        return
    _finish(record, JobStatus.CANCELLED, now)
    _set_error(record, reason, code)


def stop(record: JobRecord, reason: str, now: float) -> None:
    """started -> cancelled: the worker stopped the render at a cancel request."""
    _finish(record, JobStatus.CANCELLED, now)
    _set_error(record, reason, ErrorCode.CANCELLED)


def requeue(record: JobRecord) -> None:
    """finished -> queued for a retry: outputs, progress and times go, attempts stay."""
    record.status = JobStatus.QUEUED
    _clear_error(record)
    record.outputs = []
    record.progress = {}
    record.started_at = record.finished_at = None


def reset(record: JobRecord) -> None:
    """A dead-lettered job -> queued with a fresh attempt budget (once its cause is fixed)."""
    requeue(record)
    record.attempts = 0


def note_delivery(record: JobRecord, delivery: Delivery) -> None:
    """Keep a notification's outcome: it replaces the one of the same event and target (a
    delivery redone after its sender died), the oldest go past MAX_DELIVERIES. No status
    changes: a notification is about the job, not a step of it."""
    same = (delivery.event, delivery.target_key)
    kept = [d for d in record.notifications if (d.event, d.target_key) != same]
    record.notifications = [*kept, delivery][-MAX_DELIVERIES:]


def _finish(record: JobRecord, status: JobStatus, now: float) -> None:
    record.status = status
    record.finished_at = now


def _set_error(record: JobRecord, error: str, code: ErrorCode) -> None:
    record.error = error
    record.error_code = code.value


def _clear_error(record: JobRecord) -> None:
    record.error = None
    record.error_code = None
