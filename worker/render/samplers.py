"""Scheduler names a job may ask for, and the labels AUTOMATIC1111 uses for them."""

from __future__ import annotations

from typing import Any

from config.infotext import SAMPLER_LABELS

# job name -> (diffusers class, extra config, A1111 sampler label). The labels are
# config/infotext.py's, which reads them back from any PNG.
SCHEDULERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "pndm": ("PNDMScheduler", {}, SAMPLER_LABELS["pndm"]),
    "ddim": ("DDIMScheduler", {}, SAMPLER_LABELS["ddim"]),
    "euler": ("EulerDiscreteScheduler", {}, SAMPLER_LABELS["euler"]),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, SAMPLER_LABELS["euler_a"]),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}, SAMPLER_LABELS["dpmpp_2m"]),
    "lms": ("LMSDiscreteScheduler", {}, SAMPLER_LABELS["lms"]),
}
_LABELS = {cls: label for cls, _, label in SCHEDULERS.values()}


def scheduler_for(name: str, base_config: Any) -> Any:
    import diffusers

    cls_name, extra, _ = SCHEDULERS[name]
    return getattr(diffusers, cls_name).from_config(base_config, **extra)


def sampler_label(scheduler: Any) -> str:
    name = type(scheduler).__name__
    return _LABELS.get(name, name.removesuffix("Scheduler"))
