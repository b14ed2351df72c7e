"""Loading the diffusers pipeline: the one real loading path, for hub ids, folders and 'tiny'."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from config.errors import ModelUnavailable
from config.settings import TINY_MODEL, Settings
from worker.render.device import DevicePlan

logger = logging.getLogger(__name__)


def resolve_model(settings: Settings) -> str:
    """The hub id or folder to load; 'tiny' is built on first use, offline."""
    if settings.model == TINY_MODEL:
        from worker.render.tiny import write_tiny_model

        return str(write_tiny_model(settings.tiny_model_path))
    return settings.model


def _has_fp16_variant(source: str) -> bool | None:
    """True/False for a local folder; None for a hub id (only trying tells)."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return None
    return any(folder.glob("*/*.fp16.safetensors")) or any(folder.glob("*/*.fp16.bin"))


def load_pipeline(settings: Settings, plan: DevicePlan) -> Any:
    """from_pretrained, moved with .to(device), slicing as planned, progress bars off."""
    import torch
    from diffusers import DiffusionPipeline

    source = resolve_model(settings)
    kwargs: dict[str, Any] = {_dtype_kwarg(): getattr(torch, plan.dtype)}
    if not settings.safety_checker:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    variant = plan.half and _has_fp16_variant(source) is not False
    try:
        pipe = _from_pretrained(DiffusionPipeline, source, kwargs, fp16_variant=variant)
    except (OSError, ValueError) as exc:
        if not variant:
            raise ModelUnavailable(f"model: cannot load {source!r}: {exc}") from exc
        # The guide asks for the fp16 variant; models without one still load in fp16.
        logger.info("no fp16 variant for %s (%s); loading the default weights", source, exc)
        try:
            pipe = _from_pretrained(DiffusionPipeline, source, kwargs, fp16_variant=False)
        except (OSError, ValueError) as exc2:
            raise ModelUnavailable(f"model: cannot load {source!r}: {exc2}") from exc2
    pipe = pipe.to(plan.device)
    if plan.attention_slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _dtype_kwarg() -> str:
    from diffusers.pipelines import pipeline_utils

    # Newer diffusers renamed torch_dtype to dtype (the old name warns); older ones know only
    # torch_dtype and would silently ignore dtype.
    return "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"


def _from_pretrained(cls: Any, source: str, kwargs: dict[str, Any], *, fp16_variant: bool) -> Any:
    extra = {"variant": "fp16", "use_safetensors": True} if fp16_variant else {}
    return cls.from_pretrained(source, **kwargs, **extra)
