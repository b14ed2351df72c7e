"""Scheduler names a job may ask for, and the labels AUTOMATIC1111 uses for them."""

from __future__ import annotations

from typing import Any

# job name -> (diffusers class, extra config, A1111 sampler label)
SCHEDULERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "pndm": ("PNDMScheduler", {}, "PLMS"),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}, "DPM++ 2M"),
    "lms": ("LMSDiscreteScheduler", {}, "LMS"),
}
_LABELS = {cls: label for cls, _, label in SCHEDULERS.values()}


def scheduler_for(name: str, base_config: Any) -> Any:
    import diffusers

    cls_name, extra, _ = SCHEDULERS[name]
    return getattr(diffusers, cls_name).from_config(base_config, **extra)


def sampler_label(scheduler: Any) -> str:
    name = type(scheduler).__name__
    return _LABELS.get(name, name.removesuffix("Scheduler"))
