"""Shared by producer and worker: settings, the job schema, task names, records, errors."""

from config.errors import (
    BrokerUnavailable,
    InvalidInput,
    InvalidJob,
    InvalidSettings,
    JobNotFound,
    ModelUnavailable,
    NightshiftError,
    RenderFailed,
    Unavailable,
    WaitTimeout,
)
from config.records import JobRecord, JobStatus
from config.schema import JobSpec, Limits, new_job, parse_job
from config.settings import Settings

__all__ = [
    "BrokerUnavailable",
    "InvalidInput",
    "InvalidJob",
    "InvalidSettings",
    "JobNotFound",
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "Limits",
    "ModelUnavailable",
    "NightshiftError",
    "RenderFailed",
    "Settings",
    "Unavailable",
    "WaitTimeout",
    "new_job",
    "parse_job",
]
