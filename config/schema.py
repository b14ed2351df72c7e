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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config import fields as rules
from config.errors import InvalidJob
from config.fields import SchedulerName, Upscaler
from config.models import Catalog, default_catalog
from config.notify_targets import TargetError, check_targets, redact
from config.settings import Settings

SEED_MAX = 2**32 - 1
# Job ids end up in file names and Redis keys: letters, digits, '.', '_', '-' only,
# never starting with a dot, so no id can name a hidden file or walk out of a folder.
# Always fullmatch(): with match() and `$`, "ok\n" passes, since `$` matches before a final \n.
JOB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Python will not print an int of over 4,300 digits (sys.get_int_max_str_digits()).
_SHOWN_INT_BITS = 1000

MAX_LORAS = 8  # per job; A1111 has no limit, but each one is a set of adapter layers
DEFAULT_STRENGTH = 0.75  # img2img's denoising strength when a job gives none (A1111's)

__all__ = [
    "DEFAULT_STRENGTH",
    "MAX_LORAS",
    "SEED_MAX",
    "Hires",
    "JobSpec",
    "Limits",
    "LoraRef",
    "SchedulerName",
    "new_job",
    "parse_job",
]


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


class LoraRef(BaseModel):
    """One LoRA a job applies: a file in the worker's LoRA folders, and its weight."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    weight: float = 1.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return rules.check_lora_name(value)

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: float) -> float:
        return rules.check_lora_weight(value)


class Hires(BaseModel):
    """A1111's hires fix: render at the job's size, upscale by `scale`, then refine with an
    img2img pass of the same model (`steps` of it at `strength`; steps None: the job's)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    scale: float = 2.0
    steps: int | None = None
    strength: float = 0.45
    upscaler: Upscaler = "lanczos"

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        if not 1 < value <= 4:
            raise ValueError("must be above 1 and at most 4")
        return value

    @field_validator("strength")
    @classmethod
    def _strength(cls, value: float) -> float:
        return rules.check_strength(value)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The second pass's size: each side scaled, rounded down to the VAE's multiple."""
        step = rules.SIDE_STEP
        return int(width * self.scale) // step * step, int(height * self.scale) // step * step


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
    # LoRAs by name, applied with their weights (worker/render/loras.py); order is kept.
    loras: list[LoraRef] = Field(default_factory=list)
    # img2img / inpainting: inputs by id in the input store (config/store/inputs.py), never a
    # path; strength None means DEFAULT_STRENGTH. A mask (white: repaint) needs an image.
    init_image: str | None = None
    mask: str | None = None
    strength: float | None = None
    hires: Hires | None = None
    # Notification targets for this job's "job failed" (config/notify_targets.py): webhook or
    # apprise URLs. Their form is checked here; their hosts at submit (new_job) and delivery.
    notify: list[str] = Field(default_factory=list)
    # Times the job was moved to the front of its queue (producer/queue_front.py). Each move
    # sends a new message; one carrying fewer moves than the record is stale, and a worker
    # skips it instead of rendering the job a second time (worker/jobs/run.py).
    moved: int = Field(0, ge=0)

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

    @field_validator("init_image", "mask")
    @classmethod
    def _input_id(cls, value: str | None) -> str | None:
        return None if value is None else rules.check_input_id(value)

    @field_validator("strength")
    @classmethod
    def _strength(cls, value: float | None) -> float | None:
        return None if value is None else rules.check_strength(value)

    @field_validator("loras")
    @classmethod
    def _loras(cls, value: list[LoraRef]) -> list[LoraRef]:
        if len(value) > MAX_LORAS:
            raise ValueError(f"at most {MAX_LORAS} LoRAs per job")
        names = [lora.name for lora in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"names {twice[0]!r} more than once")
        return value

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: list[str]) -> list[str]:
        try:  # the addresses are the submitter's settings' business: new_job checks them
            return check_targets(value, untrusted=True, allow_private=True)
        except TargetError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _inputs_agree(self) -> JobSpec:
        if self.mask is not None and self.init_image is None:
            raise InvalidJob("mask", self.mask, "needs an init_image to paint into")
        if self.strength is not None and self.init_image is None:
            raise InvalidJob("strength", self.strength, "only applies with an init_image")
        if self.hires is not None and self.init_image is not None:
            raise InvalidJob("hires", "hires", "is a txt2img pass; not with an init_image")
        # img2img runs int(steps * strength) steps (diffusers' rule): none at all is an error
        # (the renderer checks again, for a message written straight into Redis).
        if self.init_image is not None:
            _check_runs_a_step("strength", self.steps, self.denoise)
        if self.hires is not None:
            _check_runs_a_step(
                "hires.strength", self.hires.steps or self.steps, self.hires.strength
            )
        return self

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

    @property
    def mode(self) -> str:
        """txt2img, img2img or inpaint: which pipeline of the model renders it."""
        if self.init_image is None:
            return "txt2img"
        return "img2img" if self.mask is None else "inpaint"

    @property
    def denoise(self) -> float:
        """The img2img strength in effect (DEFAULT_STRENGTH when the job gave none)."""
        return DEFAULT_STRENGTH if self.strength is None else self.strength

    def final_size(self) -> tuple[int, int]:
        """The size of the images written: the job's, or the hires pass's."""
        if self.hires is None:
            return self.width, self.height
        return self.hires.size(self.width, self.height)

    def seeds(self) -> list[int]:
        """One seed per image: seed, seed+1, ... wrapping inside the 32-bit range."""
        return [(self.seed + i) % (SEED_MAX + 1) for i in range(self.images)]


def _check_runs_a_step(field: str, steps: int, strength: float) -> None:
    if int(steps * strength) < 1:
        reason = f"leaves none of its {steps} steps to run (img2img runs int(steps * strength))"
        raise InvalidJob(field, strength, reason)


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
    width, height = spec.final_size()
    if spec.hires is not None and width * height > limits.max_pixels:
        reason = f"makes {width}x{height}, over the pixel budget of {limits.max_pixels}"
        raise InvalidJob("hires.scale", spec.hires.scale, reason)
    return spec


def new_job(
    prompt: str, settings: Settings, catalog: Catalog | None = None, **params: Any
) -> JobSpec:
    """Build and validate a job from user input, filling ids, seed and defaults.

    Every field the caller left out (None) comes from, in order: the model's catalog entry
    (its `defaults`, then its family's size), then settings. The model itself defaults to the
    catalog's default; `catalog` None means the local one (config/models.py default_catalog).
    """
    # Here, not at the top: config/prompt_tags.py is the one module both this and
    # config/infotext.py (which imports this one) read LoRA tags with.
    from config.prompt_tags import find_lora_tags

    if catalog is None:
        catalog = default_catalog(settings)
    # A1111 keeps LoRAs in the prompt (`<lora:NAME:WEIGHT>`), and prompts are copied from it and
    # from Civitai as they are: the tags become `loras`, whoever submits (CLI, Python, batches).
    # A LoRA the caller names explicitly wins over a tag naming the same one.
    prompt, tags = find_lora_tags(prompt) if isinstance(prompt, str) else (prompt, [])
    explicit = params.get("loras") or []
    if tags and isinstance(explicit, list | tuple):  # anything else: validation names it
        named = {
            x.get("name") if isinstance(x, dict) else getattr(x, "name", None) for x in explicit
        }
        tagged = [{"name": n, "weight": w} for n, w in tags if n not in named]
        params = params | {"loras": [*explicit, *tagged]}
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
    if not settings.notify_allow_private:
        try:  # a job must not make a worker probe its own network
            check_targets(spec.notify, untrusted=True)
        except TargetError as exc:
            raise InvalidJob("notify", _shown_targets(spec.notify), str(exc)) from None
    return spec


def _shown_targets(urls: list[str]) -> list[str]:
    """Targets as an error may show them: a URL may carry a password or a token."""
    return [redact(url) for url in urls]


def _shown_notify(value: object) -> object:
    """A refused `notify` value as an error shows it: URLs redacted, anything else by type."""
    if isinstance(value, list):
        return [redact(v) if isinstance(v, str) else type(v).__name__ for v in value]
    return redact(value) if isinstance(value, str) else type(value).__name__


def _job_error(exc: ValidationError, data: dict[str, Any]) -> InvalidJob:
    # A field no job has says more about a message than a bad value does: a forged message
    # asking for `custom_pipeline` is named for that, whatever else it holds.
    errors = exc.errors()
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = err.get("loc") or ()
    # A nested field is named by its path: `loras.0.weight`, `hires.scale`.
    field = ".".join(str(part) for part in loc) if loc else "job"
    value = data if not loc else data.get(field, err.get("input"))
    if len(loc) > 1:
        value = err.get("input")
    if isinstance(value, int) and value.bit_length() > _SHOWN_INT_BITS:
        value = f"an integer of {value.bit_length()} bits"  # repr() would raise ValueError
    if loc and loc[0] == "notify":  # URLs may carry passwords and tokens: never shown whole
        value = _shown_notify(value)
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return InvalidJob(field, value, msg)
