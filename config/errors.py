"""The one error tree. Callers branch on the three middle classes."""

from __future__ import annotations


class NightshiftError(Exception):
    """Root of every error Nightshift raises on purpose."""


class InvalidInput(NightshiftError):
    """Raised when a job, setting or argument has a bad value; names the field and the value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {_short(value)})")


class InvalidJob(InvalidInput):
    """Raised when a job spec fails validation, at submit or in the worker."""


class InvalidSettings(InvalidInput):
    """Raised when a NIGHTSHIFT_* setting is out of range or inconsistent with another."""


class Unavailable(NightshiftError):
    """Raised when infrastructure the call needs (Redis, the model files) cannot be reached."""


class BrokerUnavailable(Unavailable):
    """Raised when the Redis broker does not answer within the connect timeout."""


class ModelUnavailable(Unavailable):
    """Raised when the configured model cannot be found or loaded."""


class RenderFailed(NightshiftError):
    """Raised when a render produced no usable image; the message is the job's failure reason."""


class JobNotFound(NightshiftError):
    """Raised when no record exists for a job id."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job_id: no such job (got {job_id!r})")


class WaitTimeout(NightshiftError):
    """Raised by Job.wait when the job has not finished within the timeout."""


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class JobCancelled(NightshiftError):
    """Raised inside the worker when a job is cancelled while it renders."""
