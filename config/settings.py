"""The one typed settings object. Every NIGHTSHIFT_* variable is read here and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.errors import InvalidSettings

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
TINY_MODEL = "tiny"


class Settings(BaseSettings):
    """Defaults suit one Mac rendering SD 1.5 overnight; units are in the names."""

    model_config = SettingsConfigDict(env_prefix="NIGHTSHIFT_", extra="ignore", frozen=True)

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
    result_ttl_s: int = Field(86_400, gt=0)
    record_ttl_s: int = Field(30 * 86_400, gt=0)
    broker_connect_timeout_s: float = Field(3.0, gt=0)

    # Job limits, enforced by the shared schema on both sides.
    max_images_per_job: int = Field(16, ge=1)
    max_pixels: int = Field(1536 * 1536, ge=64 * 64)
    max_steps: int = Field(500, ge=1)
    max_prompt_chars: int = Field(4000, ge=1)
    default_steps: int = Field(30, ge=1)
    default_guidance: float = Field(7.5, ge=0)
    default_priority: int = Field(3, ge=0, le=9)

    progress_interval_s: float = Field(0.5, gt=0)

    @model_validator(mode="after")
    def _time_limit_below_visibility(self) -> Settings:
        if self.job_time_limit_s >= self.visibility_timeout_s:
            raise ValueError(
                "NIGHTSHIFT_JOB_TIME_LIMIT_S must be below NIGHTSHIFT_VISIBILITY_TIMEOUT_S, "
                "or Redis would hand a running job to a second worker "
                f"(got {self.job_time_limit_s} >= {self.visibility_timeout_s})"
            )
        if not self.queue_list:
            raise ValueError(f"NIGHTSHIFT_QUEUES names no queue (got {self.queues!r})")
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

    @property
    def tiny_model_path(self) -> Path:
        return self.data_path / "models" / "tiny"


def _settings_error(exc: ValidationError) -> InvalidSettings:
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    field = f"NIGHTSHIFT_{str(loc[0]).upper()}" if loc else "settings"
    return InvalidSettings(field, err.get("input"), err.get("msg", "invalid"))
