"""The message contract: one validated job schema and the job record, shared by both sides.

Producers validate before enqueueing; the worker validates again, because a message
can be written straight into Redis by anyone who can reach it.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from config import fields as rules
from config.errors import InvalidJob
from config.fields import SchedulerName
from config.models import Catalog, default_catalog
from config.settings import Settings

SEED_MAX = 2**32 - 1
# Job ids end up in file names and Redis keys: letters, digits, '.', '_', '-' only,
# never starting with a dot, so no id can name a hidden file or walk out of a folder.
# Always fullmatch(): with match() and `$`, "ok\n" passes, since `$` matches before a final \n.
JOB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Python will not print an int of over 4,300 digits (sys.get_int_max_str_digits()).
_SHOWN_INT_BITS = 1000

__all__ = ["SEED_MAX", "JobSpec", "Limits", "SchedulerName", "new_job", "parse_job"]


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
    # SDXL's second text encoder (OpenCLIP bigG); only SDXL models take them (config/models.py).
    prompt_2: str | None = None
    negative_prompt_2: str | None = None
    seed: int = Field(ge=0, le=SEED_MAX)
    steps: int
    width: int = 512
    height: int = 512
    guidance: float
    images: int = 1
    scheduler: SchedulerName | None = None
    # A catalog name (config/models.py); None: a message written before models existed, which
    # a worker renders with its default model.
    model: str | None = None
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

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        return None if value is None else rules.check_model_name(value)

    @field_validator("prompt", "negative_prompt", "prompt_2", "negative_prompt_2")
    @classmethod
    def _clean_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        required = info.field_name == "prompt"
        return rules.check_text(value, _limits(info).max_prompt_chars, required)

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: int, info: ValidationInfo) -> int:
        return rules.check_steps(value, _limits(info).max_steps)

    @field_validator("width", "height")
    @classmethod
    def _side(cls, value: int, info: ValidationInfo) -> int:
        return rules.check_side(value, _limits(info).max_pixels)

    @field_validator("guidance")
    @classmethod
    def _guidance(cls, value: float) -> float:
        return rules.check_guidance(value)

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


def new_job(
    prompt: str, settings: Settings, catalog: Catalog | None = None, **params: Any
) -> JobSpec:
    """Build and validate a job from user input, filling ids, seed and defaults.

    Every field the caller left out (None) comes from, in order: the model's catalog entry
    (its `defaults`, then its family's size), then settings. The model itself defaults to the
    catalog's default; `catalog` None means the local one (config/models.py default_catalog).
    """
    if catalog is None:
        catalog = default_catalog(settings)
    given = catalog.fill({k: v for k, v in params.items() if v is not None})
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
    spec = parse_job(data | given, Limits.from_settings(settings))
    catalog.check(spec)
    return spec


def _job_error(exc: ValidationError, data: dict[str, Any]) -> InvalidJob:
    # A field no job has says more about a message than a bad value does: a forged message
    # asking for `custom_pipeline` is named for that, whatever else it holds.
    errors = exc.errors()
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = err.get("loc") or ()
    field = str(loc[0]) if loc else "job"
    value = data.get(field, err.get("input")) if loc else data
    if isinstance(value, int) and value.bit_length() > _SHOWN_INT_BITS:
        value = f"an integer of {value.bit_length()} bits"  # repr() would raise ValueError
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return InvalidJob(field, value, msg)
