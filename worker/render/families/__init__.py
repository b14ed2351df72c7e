"""Model families: what differs between SD 1.5, SD 2.x and SDXL, one small module each.

The Renderer is one for all of them; a family module supplies what differs: the diffusers
pipeline classes (txt2img, and the img2img and inpaint classes derived from it), the extra
call arguments (SDXL's second prompts and size conditioning), how latents are decoded,
whether a safety checker comes with it, and a tiny random-weight pipeline for tests. SD3 or
FLUX would be a new module here (and its entry in config/models.py's FAMILIES), not a new
renderer.
"""

from __future__ import annotations

from typing import Any

from config.errors import ModelUnavailable
from worker.render.families import sd2, sd15, sdxl
from worker.render.families.base import Family

FAMILIES: dict[str, Family] = {f.name: f for f in (sd15.FAMILY, sd2.FAMILY, sdxl.FAMILY)}
DEFAULT = "sd15"


def family(name: str) -> Family:
    """The family called `name` (a catalog entry's family)."""
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(FAMILIES)
        raise ModelUnavailable(f"model family {name!r}: this worker renders only {known}") from None


def of_pipeline(pipe: Any) -> Family:
    """The family of a pipeline built without a catalog entry (benchmarks, tests), by its
    class: SD 1.5 and 2.x share one class and render alike, so either answer serves."""
    name = type(pipe).__name__
    for candidate in FAMILIES.values():
        if candidate.pipeline_class == name:
            return candidate
    return FAMILIES[DEFAULT]


__all__ = ["FAMILIES", "Family", "family", "of_pipeline"]
