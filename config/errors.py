"""The one error tree. Callers branch on the three middle classes; records keep the codes."""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Why a job failed or was cancelled: a small fixed set, stored as JobRecord.error_code.

    Metrics label failures with these, so keep the set small and never put ids in it.
    """

    TIME_LIMIT = "time_limit"  # the soft time limit (NIGHTSHIFT_JOB_TIME_LIMIT_S) ended it
    NON_FINITE = "non_finite"  # NaN/inf latents or pixels, also after the safer retry
    BLACK_IMAGE = "black_image"  # an all-black picture the safety checker did not cause
    OUT_OF_MEMORY = "out_of_memory"  # the accelerator (MPS, CUDA) ran out of memory
    RESULTS_DIR = "results_dir"  # the images could not be written to the results folder
    MODEL_UNAVAILABLE = "model_unavailable"  # the configured model cannot be found or loaded
    LORA_UNAVAILABLE = "lora_unavailable"  # a LoRA the job asks for cannot be found or loaded
    INPUT_MISSING = "input_missing"  # the job's init image or mask left the input store
    BROKER_UNAVAILABLE = "broker_unavailable"  # Redis did not answer in time
    UNAVAILABLE = "unavailable"  # other infrastructure the call needs is not there
    CANCELLED = "cancelled"  # a user cancelled it (`nightshift cancel`, the API, a batch)
    REVOKED = "revoked"  # Flower (or `celery control`) revoked or terminated its task
    EXPIRED = "expired"  # not started before its expires_at (an overnight window)
    DEAD_LETTER = "dead_letter"  # its worker process died during every allowed attempt
    INVALID_JOB = "invalid_job"  # the job spec failed validation
    INVALID_SETTINGS = "invalid_settings"  # a NIGHTSHIFT_* setting is bad or inconsistent
    MALFORMED = "malformed"  # an input or message with a bad value that is not a job spec
    NOT_FOUND = "not_found"  # no record exists for the job id
    NOT_QUEUED = "not_queued"  # the call needs a waiting job, and this one no longer waits
    WAIT_TIMEOUT = "wait_timeout"  # a caller stopped waiting before the job ended
    # Never stored: the attempt that raises it writes nothing (see Superseded).
    SUPERSEDED = "superseded"  # another worker took the job over while this one slept
    INTERNAL = "internal"  # a bug or an error nobody expected


class NightshiftError(Exception):
    """Root of every error Nightshift raises on purpose; `code` says why, for records."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, *args: object, code: ErrorCode | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code


class InvalidInput(NightshiftError):
    """Raised when a job, setting or argument has a bad value; names the field and the value."""

    code = ErrorCode.MALFORMED

    def __init__(
        self, field: str, value: object, reason: str, *, code: ErrorCode | None = None
    ) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {_short(value)})", code=code)


class InvalidJob(InvalidInput):
    """Raised when a job spec fails validation, at submit or in the worker."""

    code = ErrorCode.INVALID_JOB


class InvalidSettings(InvalidInput):
    """Raised when a NIGHTSHIFT_* setting is out of range or inconsistent with another."""

    code = ErrorCode.INVALID_SETTINGS


class Unavailable(NightshiftError):
    """Raised when infrastructure the call needs (Redis, the model files) cannot be reached."""

    code = ErrorCode.UNAVAILABLE


class BrokerUnavailable(Unavailable):
    """Raised when the Redis broker does not answer within the connect timeout."""

    code = ErrorCode.BROKER_UNAVAILABLE


class ModelUnavailable(Unavailable):
    """Raised when the configured model cannot be found or loaded."""

    code = ErrorCode.MODEL_UNAVAILABLE


class LoraUnavailable(Unavailable):
    """Raised when a LoRA a job names is not in the worker's LoRA folders, or cannot be loaded
    into the job's model (another family's LoRA, a broken file)."""

    code = ErrorCode.LORA_UNAVAILABLE


class InputMissing(Unavailable):
    """Raised when a job's init image or mask is no longer in the input store."""

    code = ErrorCode.INPUT_MISSING


class RenderFailed(NightshiftError):
    """Raised when a render produced no usable image; the message is the job's failure reason
    and `code` its kind (the renderer always passes one)."""


class JobNotFound(NightshiftError):
    """Raised when no record exists for a job id."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job_id: no such job (got {job_id!r})")


class JobNotQueued(NightshiftError):
    """Raised when a call needs a job that still waits (moving it to the front) and it does not."""

    code = ErrorCode.NOT_QUEUED

    def __init__(self, job_id: str, record_status: str) -> None:
        self.job_id, self.record_status = job_id, record_status
        super().__init__(
            f"job {job_id}: already {record_status}: only a queued job moves to the front"
        )


class WaitTimeout(NightshiftError):
    """Raised by Job.wait when the job has not finished within the timeout."""

    code = ErrorCode.WAIT_TIMEOUT


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class JobCancelled(NightshiftError):
    """Raised inside the worker when a job is cancelled while it renders."""

    code = ErrorCode.CANCELLED


class Superseded(NightshiftError):
    """Raised inside the worker when another attempt took over the job this one renders (its
    worker slept past its lease); the attempt stops without writing a file or the record."""

    code = ErrorCode.SUPERSEDED

    def __init__(self, job_id: str, attempt: int, worker: str, record_status: str) -> None:
        self.job_id, self.attempt, self.worker = job_id, attempt, worker
        self.record_status = record_status  # the job's status now: the new holder's business
        super().__init__(
            f"job {job_id}: superseded by attempt {attempt} on {worker}, now {record_status}"
        )
