"""Field rules a job and a model's defaults share: one check per kind of value.

JobSpec (config/schema.py) and ModelDefaults (config/models.py) both validate through these, so
a default written in the model catalog is refused for the same reason, in the same words, as
the same value given to `nightshift submit`. Each check raises ValueError, which pydantic turns
into that field's error.
"""

from __future__ import annotations

import math
import re
from typing import Literal

SchedulerName = Literal["pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "lms"]
Upscaler = Literal["lanczos", "latent"]

# C0 controls but tab and newline, DEL, C1 controls (\x9b is a terminal's CSI, like ESC [),
# and lone surrogates, which no UTF-8 encoder (Redis, a PNG's text chunk) can write.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# A model's name ends up in queue names (`mps@sdxl`), Redis keys and log lines, never in a
# path: lower case, no '/', no '..'. Always fullmatch(), as with job ids.
MODEL_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MODEL_NAME_RULE = "must be a catalog name (1-64 of a-z 0-9 . _ -), not a path or hub id"
# A LoRA is named by its file's stem in the worker's LoRA folders, never by a path: no '/',
# no '\\', no '..', no leading dot or space. Spaces inside are fine (`<lora:my lora:0.8>`).
LORA_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9 _.+()\[\]-]{0,127}")
LORA_NAME_RULE = "must be a LoRA file's name without .safetensors (no '/', '\\' or '..')"
MAX_LORA_WEIGHT = 4.0
# An input (init image, mask) is named by the sha256 of its stored bytes (config/store/inputs.py).
INPUT_ID_RE = re.compile(r"[0-9a-f]{64}")
# Every Stable Diffusion VAE in the catalog's families shrinks a side by 8.
SIDE_STEP = 8
MIN_SIDE = 64


def check_text(value: str, max_chars: int, required: bool = False) -> str:
    if required and not value.strip():
        raise ValueError("must not be empty")
    if len(value) > max_chars:
        raise ValueError(f"longer than {max_chars} characters")
    if CONTROL_RE.search(value):
        raise ValueError("contains a NUL, control character or lone surrogate")
    return value


def check_steps(value: int, max_steps: int) -> int:
    if not 1 <= value <= max_steps:
        raise ValueError(f"must be between 1 and {max_steps}")
    return value


def check_side(value: int, max_pixels: int) -> int:
    if value < MIN_SIDE or value % SIDE_STEP:
        raise ValueError(f"must be a multiple of {SIDE_STEP}, at least {MIN_SIDE}")
    if value * MIN_SIDE > max_pixels:
        raise ValueError(f"exceeds the pixel budget of {max_pixels}")
    return value


def check_guidance(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= 50:
        raise ValueError("must be a finite number between 0 and 50")
    return value


def check_model_name(value: str) -> str:
    if not MODEL_NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError(MODEL_NAME_RULE)
    return value


def check_lora_name(value: str) -> str:
    if not LORA_NAME_RE.fullmatch(value) or ".." in value or value != value.strip():
        raise ValueError(LORA_NAME_RULE)
    return value


def check_lora_weight(value: float) -> float:
    if not math.isfinite(value) or abs(value) > MAX_LORA_WEIGHT:
        bound = f"{MAX_LORA_WEIGHT:g}"
        raise ValueError(f"must be a finite number between -{bound} and {bound}")
    return value


def check_strength(value: float) -> float:
    if not math.isfinite(value) or not 0 < value <= 1:
        raise ValueError("must be a number above 0 and at most 1")
    return value


def check_input_id(value: str) -> str:
    if not INPUT_ID_RE.fullmatch(value):
        raise ValueError("must be an input id (64 lower-case hex: the sha256 of a stored input)")
    return value
