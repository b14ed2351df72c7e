"""The message contract: one validated job schema and the job record, shared by both sides.

Producers validate before enqueueing; the worker validates again, because a message
can be written straight into Redis by anyone who can reach it.
"""

from __future__ import annotations

import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from config.errors import InvalidJob
from config.settings import Settings

SEED_MAX = 2**32 - 1
# Job ids end up in file names and Redis keys: letters, digits, '.', '_', '-' only,
# never starting with a dot, so no id can name a hidden file or walk out of a folder.
# Always fullmatch(): with match() and `$`, "ok\n" passes, since `$` matches before a final \n.
JOB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# C0 controls but tab and newline, DEL, C1 controls (\x9b is a terminal's CSI, like ESC [),
# and lone surrogates, which no UTF-8 encoder (Redis, a PNG's text chunk) can write.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Python will not print an int of over 4,300 digits (sys.get_int_max_str_digits()).
_SHOWN_INT_BITS = 1000

SchedulerName = Literal["pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "lms"]


@dataclass(frozen=True)
class Limits:
    """The parts of Settings that bound a job, passed to validation as context."""

    max_images: int = 16
    max_pixels: int = 1536 * 1536
    max_steps: int = 500
    max_prompt_chars: int = 4000

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.max_images_per_job,
            settings.max_pixels,
            settings.max_steps,
            settings.max_prompt_chars,
        )


def _limits(info: ValidationInfo) -> Limits:
    ctx = info.context or {}
    limits = ctx.get("limits")
    return limits if isinstance(limits, Limits) else Limits()


class JobSpec(BaseModel):
    """Everything needed to render one job; the only payload a task message carries."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    prompt: str
    negative_prompt: str = ""
    seed: int = Field(ge=0, le=SEED_MAX)
    steps: int
    width: int = 512
    height: int = 512
    guidance: float
    images: int = 1
    scheduler: SchedulerName | None = None
    priority: int = Field(3, ge=0, le=9)
    queue: str = "mps"
    batch_id: str | None = None
    created_at: float = Field(ge=0)
    # Unix time after which a job that has not started is dropped (overnight windows).
    expires_at: float | None = Field(None, ge=0)

    @field_validator("id", "batch_id")
    @classmethod
    def _safe_id(cls, value: str | None) -> str | None:
        if value is not None and (not JOB_ID_RE.fullmatch(value) or ".." in value):
            raise ValueError("must be 1-128 of A-Z a-z 0-9 . _ - , not starting with '.'")
        return value

    @field_validator("queue")
    @classmethod
    def _safe_queue(cls, value: str) -> str:
        if not QUEUE_RE.fullmatch(value):
            raise ValueError("must be 1-64 of A-Z a-z 0-9 . _ -")
        return value

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _clean_text(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "prompt" and not value.strip():
            raise ValueError("must not be empty")
        if len(value) > _limits(info).max_prompt_chars:
            raise ValueError(f"longer than {_limits(info).max_prompt_chars} characters")
        if _CONTROL_RE.search(value):
            raise ValueError("contains a NUL, control character or lone surrogate")
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: int, info: ValidationInfo) -> int:
        if not 1 <= value <= _limits(info).max_steps:
            raise ValueError(f"must be between 1 and {_limits(info).max_steps}")
        return value

    @field_validator("width", "height")
    @classmethod
    def _side(cls, value: int, info: ValidationInfo) -> int:
        if value < 64 or value % 8:
            raise ValueError("must be a multiple of 8, at least 64")
        if value * 64 > _limits(info).max_pixels:
            raise ValueError(f"exceeds the pixel budget of {_limits(info).max_pixels}")
        return value

    @field_validator("guidance")
    @classmethod
    def _guidance(cls, value: float) -> float:
        if not math.isfinite(value) or not 0 <= value <= 50:
            raise ValueError("must be a finite number between 0 and 50")
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, value: int, info: ValidationInfo) -> int:
        if not 1 <= value <= _limits(info).max_images:
            raise ValueError(f"must be between 1 and {_limits(info).max_images}")
        return value

    def seeds(self) -> list[int]:
        """One seed per image: seed, seed+1, ... wrapping inside the 32-bit range."""
        return [(self.seed + i) % (SEED_MAX + 1) for i in range(self.images)]


def parse_job(data: object, limits: Limits | None = None) -> JobSpec:
    """Validate a decoded message or user input; raise InvalidJob naming the field."""
    if not isinstance(data, dict):
        raise InvalidJob("job", data, "must be a JSON object")
    limits = limits or Limits()
    try:
        spec = JobSpec.model_validate(data, context={"limits": limits})
    except ValidationError as exc:
        raise _job_error(exc, data) from None
    if spec.width * spec.height > limits.max_pixels:
        size = f"{spec.width}x{spec.height}"
        raise InvalidJob("size", size, f"exceeds the pixel budget of {limits.max_pixels}")
    return spec


def new_job(prompt: str, settings: Settings, **params: Any) -> JobSpec:
    """Build and validate a job from user input, filling ids, seed and defaults from settings."""
    data: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "prompt": prompt,
        "seed": secrets.randbelow(SEED_MAX + 1),
        "steps": settings.default_steps,
        "guidance": settings.default_guidance,
        "priority": settings.default_priority,
        "queue": settings.default_queue,
        "created_at": time.time(),
    }
    data.update({k: v for k, v in params.items() if v is not None})
    return parse_job(data, Limits.from_settings(settings))


def _job_error(exc: ValidationError, data: dict[str, Any]) -> InvalidJob:
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    field = str(loc[0]) if loc else "job"
    value = data.get(field, err.get("input")) if loc else data
    if isinstance(value, int) and value.bit_length() > _SHOWN_INT_BITS:
        value = f"an integer of {value.bit_length()} bits"  # repr() would raise ValueError
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return InvalidJob(field, value, msg)
