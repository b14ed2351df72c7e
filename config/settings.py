"""The one typed settings object. Every NIGHTSHIFT_* variable is read here and nowhere else."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.errors import InvalidSettings
from config.fields import check_model_name
from config.notify_targets import TargetError, check_targets, is_webhook, split_targets
from config.window import WINDOW_HELP, Window

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
TINY_MODEL = "tiny"

# Grace between the soft time limit (the job fails cleanly) and the hard one (Celery kills
# the process): time for the current step to notice and for the record to be written. Here,
# not in celery_conf, because the settings check the hard limit against the visibility timeout.
HARD_LIMIT_GRACE_S = 30


class Settings(BaseSettings):
    """Defaults suit one Mac rendering SD 1.5 overnight; units are in the names."""

    # .env in the working directory, as docker compose reads it; a real environment variable
    # wins over it, and its lines without the NIGHTSHIFT_ prefix are ignored.
    model_config = SettingsConfigDict(
        env_prefix="NIGHTSHIFT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Broker, result backend, records"
    )
    model: str = Field(DEFAULT_MODEL, description="Hub id, local diffusers folder, or 'tiny'")
    data_dir: Path = Field(Path("~/.nightshift"), description="Models built here, redis data")
    results_dir: Path | None = Field(None, description="Images; default <data_dir>/results")
    device: Literal["auto", "mps", "cuda", "cpu"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    attention_slicing: Literal["auto", "on", "off"] = "auto"
    # Below this much RAM the guide recommends attention slicing on MPS.
    slicing_ram_threshold_gb: float = Field(64.0, gt=0)
    queues: str = Field("mps", description="Comma-separated queues; producers send to the first")
    safety_checker: bool = True
    warmup: bool = True

    # Time: a job must end well before Redis would hand its message to another worker.
    job_time_limit_s: int = Field(3600, gt=0)
    visibility_timeout_s: int = Field(7200, gt=0)
    model_load_timeout_s: int = Field(1800, gt=0)
    # Celery results are not stored (the job record is the result); this keeps the few it
    # does write, a cancelled task's REVOKED mark, from piling up.
    result_ttl_s: int = Field(86_400, gt=0)
    record_ttl_s: int = Field(30 * 86_400, gt=0)
    broker_connect_timeout_s: float = Field(3.0, gt=0)
    # How long a worker keeps retrying Redis (a restart, a blip) before it gives the job
    # back to the queue; producers still fail fast after broker_connect_timeout_s.
    worker_redis_patience_s: float = Field(60.0, ge=0)

    # Job limits, enforced by the shared schema on both sides.
    max_images_per_job: int = Field(16, ge=1)
    max_pixels: int = Field(1536 * 1536, ge=64 * 64)
    max_steps: int = Field(500, ge=1)
    max_prompt_chars: int = Field(4000, ge=1)
    default_steps: int = Field(30, ge=1)
    default_guidance: float = Field(7.5, ge=0)
    default_priority: int = Field(3, ge=0, le=9)

    progress_interval_s: float = Field(0.5, gt=0)
    # Live previews (worker/render/preview.py): the running picture, at most this often; they
    # ride on progress writes, so never more often than progress_interval_s. 0 = off.
    preview_interval_s: float = Field(0.5, ge=0)
    # A single job's PNG encoded and written while the next job renders, the job recorded
    # succeeded once its file is durable (worker/jobs/writebehind.py). None (auto): on for cuda
    # and mps, whose renders leave the CPU free; off for cpu, where the write would only move
    # into the next render's time (BENCHMARKS.md). False: written in the task.
    write_behind: bool | None = None

    # Faults and security (issue 3). A job whose worker process died this many times while
    # rendering it is failed and moved to the dead-letter list instead of crash-looping.
    max_attempts: int = Field(3, ge=1)
    # A running job's lease: refreshed by its worker, it tells other workers the job is alive.
    # An unacknowledged job without a lease is put back on its queue by any worker's sweep.
    lease_ttl_s: float = Field(15.0, gt=0)
    recovery_interval_s: float = Field(10.0, gt=0)
    # Deprecated: the model catalog (config/models.py) is the allow-list now. When set, it must
    # hold NIGHTSHIFT_MODEL and every catalog entry's source. "" = no extra check.
    allowed_models: str = ""

    # Any Stable Diffusion model, chosen per job (issue 12). The catalog file names the models
    # a job may ask for (default <data_dir>/models.yaml when it exists; without one,
    # NIGHTSHIFT_MODEL is a catalog of one). default_model: the catalog name a job gets when it
    # names none ("" = the file's `default:`, or NIGHTSHIFT_MODEL's entry).
    models_file: Path | None = None
    default_model: str = ""
    # Models a worker keeps loaded: "auto" (what its memory holds), a count ("2") or a size of
    # weights ("12GB", "8GiB"); the least recently used one goes first.
    model_cache: str = "auto"

    # LoRAs (worker/render/loras.py): `.safetensors` files in these folders, separated by the
    # OS path separator (':'), named by their stem; "" = <data_dir>/loras. A job names a LoRA,
    # never a path. lora_cache: adapters kept loaded per model (least recently used goes).
    lora_dirs: str = ""
    lora_cache: int = Field(8, ge=1, le=64)
    # img2img/inpainting inputs (config/store/inputs.py): kept in Redis, by content hash, for
    # input_ttl_s after the last job that named one; each input's size and pixels capped.
    input_ttl_s: int = Field(7 * 86_400, gt=0)
    max_input_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_input_pixels: int = Field(4096 * 4096, ge=64 * 64)

    # Wildcard files for prompts (`__name__`, dynamicprompts' syntax): folders separated by
    # ':', "" = <data_dir>/wildcards. A file outside them is never read.
    wildcard_dirs: str = ""
    # Log lines: "human" (the default) or "json", one object a line for log shippers.
    log_format: Literal["human", "json"] = "human"

    # The HTTP API (`nightshift api`): where it listens (127.0.0.1 = this machine only; any other
    # address needs a token to exist), its request body cap (413 past it), and the origins whose
    # web pages may call it (comma-separated; "" = CORS off).
    api_host: str = "127.0.0.1"
    api_port: int = Field(8765, ge=1, le=65535)
    # Two init images at the input cap (16 MiB each: 21.4 MiB as base64) and the job around them;
    # a batch file (16 MiB at most, producer/batches/formats.py) fits too.
    api_max_body_bytes: int = Field(48 * 2**20, ge=1024)
    api_cors_origins: str = ""

    # Overnight batches (issue 4). With Redis, priority 0 is served first: batch jobs get a
    # larger number than single submits, so an interactive job jumps the waiting batch.
    batch_priority: int = Field(7, ge=0, le=9)
    # Local time during which a worker takes jobs, "HH:MM-HH:MM" (may wrap midnight); "" = always.
    worker_window: str = ""
    # How often a worker re-reads the pause flag and its window.
    gate_poll_s: float = Field(1.0, gt=0)
    # Cells in a batch's contact-sheet.png; the gallery page always lists every job.
    contact_sheet_max_images: int = Field(1024, ge=1)

    # Living on a Mac (issue 6): memory guard, power and heat. 0 turns a budget off.
    # After each job the worker measures these; over budget it empties the allocator
    # cache, and if still over it finishes the job and then recycles its process.
    mps_memory_budget_mb: int = Field(0, ge=0, description="torch.mps driver; 0 = half the RAM")
    cuda_memory_budget_mb: int = Field(0, ge=0, description="torch.cuda reserved; 0 = off")
    rss_budget_mb: int = Field(0, ge=0, description="worker process RSS; 0 = off")
    # macOS swapping wrecks speed (the guide). Swap grown since the worker process started,
    # not swap in use: other apps' swap must not make the worker recycle after every job.
    swap_growth_budget_mb: int = Field(1024, ge=0, description="0 = off")
    # Exported as PYTORCH_MPS_HIGH_WATERMARK_RATIO before torch loads: 1.0 caps MPS at the
    # GPU's recommended working set, so a job fails with an MPS out-of-memory error instead
    # of driving macOS into swap (torch's own default, 1.7, lets it overshoot). None = torch's.
    mps_high_watermark_ratio: float | None = Field(1.0, ge=0)
    keep_awake: bool = Field(True, description="hold off idle sleep while jobs are queued")
    keep_awake_command: str = "caffeinate -i -w {pid}"
    pause_on_battery: bool = Field(True, description="stop taking jobs on battery, resume on AC")
    power_status_command: str = "pmset -g batt"
    power_poll_s: float = Field(30.0, gt=0)
    # Free space below which `nightshift doctor` fails the results folder.
    min_free_disk_gb: float = Field(5.0, ge=0)

    # Watching it work (issue 5): Flower, the metrics exporter, Flower's terminate.
    # Flower refuses to start without both credentials unless bound to 127.0.0.1 with --no-auth.
    flower_user: str = ""
    flower_password: str = ""
    flower_address: str = Field("127.0.0.1", description="0.0.0.0 to reach it from the LAN")
    flower_port: int = Field(5555, ge=1, le=65535)
    # How often Flower writes its state file (it also writes it when it stops).
    flower_state_save_interval_s: int = Field(60, ge=1)
    metrics_address: str = "127.0.0.1"
    metrics_port: int = Field(9808, ge=1, le=65535)
    # A terminate from Flower reaches the rendering child as SIGTERM; the child waits this
    # long for the matching cancel request, otherwise it exits as before (cold shutdown).
    terminate_grace_s: float = Field(3.0, gt=0)

    # Speed on CUDA (issue 7); mps and cpu ignore the fast path, and mps never groups.
    # The fast path (channels-last, fused QKV, torch.compile of the UNet) is built and warmed
    # at worker start-up for each group size below, never inside a job.
    fast_path: bool = Field(True, description="compile at start-up on cuda; false = eager")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "reduce-overhead"
    # Jobs queued together as a group share one forward pass, at most this many.
    max_group_size: int = Field(16, ge=1, le=64)
    # Group sizes compiled at start-up ("1,16"); a group is cut into these sizes on cuda.
    fast_path_group_sizes: str = "1,16"
    # torch.compile's caches (inductor, triton, torch's mega-cache file), default
    # <data_dir>/compile-cache: torch keeps them in /tmp, so a restarted worker compiled cold
    # (133.8 s start-to-ready on an H100, 48.9 s warm). Private (0700): it holds executed code.
    compile_cache_dir: Path | None = None

    # Notifications (worker/notify/): targets for "batch finished" and "job failed", besides
    # those a job or batch file names; URLs separated by commas or spaces (webhooks or apprise
    # URLs, config/notify_targets.py). These are the operator's: any apprise scheme, any host.
    notify_batch_finished: str = ""
    notify_job_failed: str = ""
    # Let jobs and batch files name loopback and private hosts (a home LAN; tests).
    notify_allow_private: bool = False
    # The HMAC-SHA256 key of webhook signatures, shared with the receivers (a long random
    # value: `openssl rand -hex 32`); webhooks are not sent without it (their outcome says
    # so), and settings naming a default webhook refuse to load without it.
    notify_secret: str = ""
    # On a Mac with no target at all for a batch's end: a Notification Center message.
    notify_mac_default: bool = True
    # One delivery: tries, first pause (doubling after each failed try), timeout per try.
    notify_attempts: int = Field(4, ge=1, le=10)
    notify_backoff_s: float = Field(1.0, gt=0, le=60)
    notify_timeout_s: float = Field(10.0, gt=0, le=120)
    # An outbox entry a sender took this long ago and never acknowledged (its worker died) is
    # taken over by another worker's sender; must exceed one delivery's longest run.
    notify_claim_idle_s: float = Field(300.0, gt=0)

    @field_validator("fast_path_group_sizes")
    @classmethod
    def _group_sizes(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.isdigit() and int(p) >= 1 for p in parts):
            raise ValueError(f"must be comma-separated positive integers, got {value!r}")
        return value

    @field_validator("default_model")
    @classmethod
    def _default_model(cls, value: str) -> str:
        return check_model_name(value) if value else value

    @field_validator("model_cache")
    @classmethod
    def _model_cache(cls, value: str) -> str:
        parse_model_cache(value)
        return value

    @field_validator("worker_window")
    @classmethod
    def _window(cls, value: str) -> str:
        try:
            Window.parse(value)
        except InvalidSettings:
            raise ValueError(WINDOW_HELP) from None
        return value

    @model_validator(mode="after")
    def _time_limit_below_visibility(self) -> Settings:
        if self.job_time_limit_s >= self.visibility_timeout_s:
            raise ValueError(
                "NIGHTSHIFT_JOB_TIME_LIMIT_S must be below NIGHTSHIFT_VISIBILITY_TIMEOUT_S, "
                "or Redis would hand a running job to a second worker "
                f"(got {self.job_time_limit_s} >= {self.visibility_timeout_s})"
            )
        if self.hard_time_limit_s >= self.visibility_timeout_s:
            # Celery kills a stuck job only at the hard limit: until then it is still running.
            raise ValueError(
                f"NIGHTSHIFT_JOB_TIME_LIMIT_S + {HARD_LIMIT_GRACE_S} s (the hard time limit) "
                "must be below NIGHTSHIFT_VISIBILITY_TIMEOUT_S, or Redis would hand a stuck "
                f"job to a second worker (got {self.job_time_limit_s} + {HARD_LIMIT_GRACE_S} "
                f"= {self.hard_time_limit_s} >= {self.visibility_timeout_s})"
            )
        if not self.queue_list:
            raise ValueError(f"NIGHTSHIFT_QUEUES names no queue (got {self.queues!r})")
        return self

    @field_validator("notify_batch_finished", "notify_job_failed")
    @classmethod
    def _notify_targets(cls, value: str) -> str:
        try:
            check_targets(split_targets(value), untrusted=False)
        except TargetError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _notify_consistent(self) -> Settings:
        targets = [*self.notify_batch_finished_targets, *self.notify_job_failed_targets]
        if any(is_webhook(t) for t in targets) and not self.notify_secret:
            raise ValueError(
                "NIGHTSHIFT_NOTIFY_SECRET must be set when a default notify target is a webhook "
                "(its receivers check the signature with it)"
            )
        longest = self.notify_attempts * self.notify_timeout_s + self.notify_backoff_s * (
            2 ** (self.notify_attempts - 1)
        )
        if self.notify_claim_idle_s <= longest:
            # A slow delivery still running would be taken over: sent twice for nothing.
            raise ValueError(
                f"NIGHTSHIFT_NOTIFY_CLAIM_IDLE_S must exceed one delivery's longest run "
                f"({longest:.0f} s from the attempts, timeout and backoff)"
            )
        return self

    @model_validator(mode="after")
    def _model_allowed(self) -> Settings:
        # The model comes from this config only (a job has no model field); the allow-list
        # guards against a tampered NIGHTSHIFT_MODEL making the worker fetch another repo.
        if self.model not in self.allowed_model_list:
            raise ValueError(
                f"NIGHTSHIFT_MODEL {self.model!r} is not in NIGHTSHIFT_ALLOWED_MODELS "
                f"({self.allowed_models!r})"
            )
        return self

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read NIGHTSHIFT_* from the environment; keyword overrides win (CLI flags)."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise _settings_error(exc) from None

    def to_env(self) -> dict[str, str]:
        """The NIGHTSHIFT_* variables that reproduce these settings in another process."""
        env = {}
        for name, value in self.model_dump().items():
            if value is not None:
                env[f"NIGHTSHIFT_{name.upper()}"] = str(value)
        return env

    @property
    def hard_time_limit_s(self) -> int:
        """When Celery kills a job that ignored its soft limit (job_time_limit_s)."""
        return self.job_time_limit_s + HARD_LIMIT_GRACE_S

    @property
    def window(self) -> Window | None:
        """worker_window parsed (checked at construction); None when always open."""
        return Window.parse(self.worker_window)

    @property
    def group_sizes(self) -> tuple[int, ...]:
        """fast_path_group_sizes as sorted ints within 1..max_group_size (1 always included)."""
        sizes = {1}
        for part in self.fast_path_group_sizes.split(","):
            if part.strip():
                sizes.add(min(int(part), self.max_group_size))
        return tuple(sorted(sizes))

    @property
    def models_path(self) -> Path | None:
        """The catalog file: models_file, else <data_dir>/models.yaml if it exists, else None."""
        if self.models_file is not None:
            return self.models_file.expanduser()
        default = self.data_path / "models.yaml"
        return default if default.is_file() else None

    @property
    def model_cache_limit(self) -> ModelCacheLimit:
        """model_cache parsed (checked at construction)."""
        return parse_model_cache(self.model_cache)

    @property
    def allowed_model_list(self) -> list[str]:
        """Deprecated with NIGHTSHIFT_ALLOWED_MODELS: the catalog is the allow-list."""
        listed = [m.strip() for m in self.allowed_models.split(",") if m.strip()]
        return listed or [self.model]

    @property
    def redis_url_redacted(self) -> str:
        """redis_url with any password replaced by ***, for logs and messages."""
        return redact_url(self.redis_url)

    @property
    def queue_list(self) -> list[str]:
        return [q.strip() for q in self.queues.split(",") if q.strip()]

    @property
    def default_queue(self) -> str:
        return self.queue_list[0]

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def results_path(self) -> Path:
        base = self.results_dir if self.results_dir is not None else self.data_path / "results"
        return base.expanduser().resolve()

    def report_path(self, batch_id: str) -> Path:
        """A batch's folder: its images, and the morning report the worker writes there."""
        return self.results_path / "batches" / batch_id

    @property
    def compile_cache_path(self) -> Path:
        base = self.compile_cache_dir or self.data_path / "compile-cache"
        return base.expanduser().resolve()

    @property
    def lora_paths(self) -> list[Path]:
        """The LoRA folders, in search order: lora_dirs, else <data_dir>/loras."""
        listed = [p for p in self.lora_dirs.split(os.pathsep) if p.strip()]
        if not listed:
            return [self.data_path / "loras"]
        return [Path(p.strip()).expanduser().resolve() for p in listed]

    @property
    def notify_batch_finished_targets(self) -> list[str]:
        return split_targets(self.notify_batch_finished)

    @property
    def notify_job_failed_targets(self) -> list[str]:
        return split_targets(self.notify_job_failed)

    @property
    def tiny_model_path(self) -> Path:
        return self.data_path / "models" / "tiny"


@dataclass(frozen=True)
class ModelCacheLimit:
    """NIGHTSHIFT_MODEL_CACHE: at most `count` models, or at most `size_bytes` of weights; both
    None for "auto" (the worker decides from its memory)."""

    count: int | None = None
    size_bytes: int | None = None


_CACHE_COUNT_RE = re.compile(r"[1-9][0-9]{0,2}")
_CACHE_SIZE_RE = re.compile(r"([0-9]{1,6}(?:\.[0-9]{1,3})?)\s*([KMGT])(i?)B", re.IGNORECASE)
MODEL_CACHE_HELP = 'must be "auto", a count of models like "2", or a size like "12GB" or "8GiB"'


def parse_model_cache(value: str) -> ModelCacheLimit:
    text = value.strip()
    if text.lower() == "auto":
        return ModelCacheLimit()
    if _CACHE_COUNT_RE.fullmatch(text):
        return ModelCacheLimit(count=int(text))
    match = _CACHE_SIZE_RE.fullmatch(text)
    if match is None or float(match[1]) <= 0:
        raise ValueError(MODEL_CACHE_HELP)
    base = 1024 if match[3] else 1000
    power = "KMGT".index(match[2].upper()) + 1
    return ModelCacheLimit(size_bytes=int(float(match[1]) * base**power))


def redact_url(url: str) -> str:
    """The URL with its password hidden: in `user:password@` and `:password@`, in a bare
    `secret@`, and in `?password=`. The one redaction: logs, errors and `doctor` all use it,
    and doctor output gets pasted into issues.

    The user part runs to the LAST '@': a password with a raw '@' or '/' in it (redis-py
    takes them unquoted) must not show its tail. Rather too much hidden than too little.
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        rest = f"{user}:***@{host}" if colon else f"***@{host}"
    rest = re.sub(r"([?&]password=)[^&#]*", r"\1***", rest)
    return f"{scheme}{sep}{rest}"


def _settings_error(exc: ValidationError) -> InvalidSettings:
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    field = f"NIGHTSHIFT_{str(loc[0]).upper()}" if loc else "settings"
    return InvalidSettings(field, err.get("input"), err.get("msg", "invalid"))
