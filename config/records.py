"""Job records: a job's status and its whole story, and every transition between statuses.

A record lives in Redis under `nightshift:job:<id>` (config/store/jobs.py writes it). Its
status changes only through the functions below: one owner per transition.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field

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


class JobRecord(BaseModel):
    """A job's whole story, kept in Redis under nightshift:job:<id>."""

    spec: JobSpec
    status: JobStatus = JobStatus.QUEUED
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    queue_wait_s: float | None = None
    render_s: float | None = None
    outputs: list[str] = Field(default_factory=list)
    error: str | None = None
    attempts: int = 0
    progress: dict[str, int] = Field(default_factory=dict)
    render: RenderInfo = Field(default_factory=RenderInfo)

    @property
    def id(self) -> str:
        return self.spec.id

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> JobRecord:
        return cls.model_validate_json(raw)
