"""Stable Diffusion families: what each one takes, and how to tell a model's family from its files.

A family decides what a job for it may hold (SDXL's second prompt), its natural size and the
pipeline class the worker builds. The family of a model comes, in order, from:

1. its folder's own `model_index.json` (`_class_name`), with the text encoder's width telling
   SD 2.x (OpenCLIP-H, 1024) from SD 1.x (CLIP-L, 768) and the scheduler's `prediction_type`
   telling a 768-v model from a 512 base;
2. for a hub id: the table of well-known ids below, then the Hugging Face cache, read offline
   (`try_to_load_from_cache`: never a download). The table goes first only because its answers
   are certain and it spares importing huggingface_hub (0.1 s) on every producer start;
3. otherwise the catalog entry must say `family:` (config/models.py says so, naming the entry).

Pure: files only, no Redis, no torch.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from config.fields import SchedulerName

Family = Literal["sd15", "sd2", "sdxl"]
Prediction = Literal["epsilon", "v_prediction"]
FAMILY_NAMES: tuple[Family, ...] = get_args(Family)
PREDICTIONS: tuple[Prediction, ...] = get_args(Prediction)
# A config file of a diffusers folder is a few KiB; anything larger is not one.
MAX_CONFIG_BYTES = 2**20
# OpenCLIP ViT-H, SD 2.x's text encoder, is 1024 wide; SD 1.x's CLIP ViT-L is 768.
SD2_TEXT_WIDTH = 1024


@dataclass(frozen=True)
class FamilyTraits:
    """What a family takes and gives, for the producer's checks and the worker's pipeline."""

    name: Family
    label: str  # for people and for A1111's `Model:` text
    default_size: int  # the side a job of this family gets when it names none
    vae_factor: int  # width and height must be multiples of this
    only_fields: frozenset[str]  # JobSpec fields only this family accepts
    default_scheduler_name: SchedulerName | None  # None: the model's own scheduler


FAMILIES: dict[Family, FamilyTraits] = {
    "sd15": FamilyTraits("sd15", "SD 1.5", 512, 8, frozenset(), None),
    # 768 is SD 2.x's 768-v (v-prediction) size; a base (epsilon) model gets 512, see
    # ModelEntry.default_size.
    "sd2": FamilyTraits("sd2", "SD 2.x", 768, 8, frozenset(), None),
    "sdxl": FamilyTraits(
        "sdxl", "SDXL", 1024, 8, frozenset({"prompt_2", "negative_prompt_2"}), "euler"
    ),
}

# A LoRA's family, from the width of the text conditioning its cross-attention keys take
# (worker/render/loras.py reads it from the file's header): CLIP-L, OpenCLIP-H, both SDXL
# encoders side by side. A producer refuses a LoRA of another family than the job's model.
LORA_FAMILY_BY_CROSS_DIM: dict[int, Family] = {768: "sd15", 1024: "sd2", 2048: "sdxl"}

# Hub ids whose family is certain; anything else is read from its files or must be declared.
WELL_KNOWN: dict[str, tuple[Family, Prediction]] = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ("sd15", "epsilon"),
    "runwayml/stable-diffusion-v1-5": ("sd15", "epsilon"),
    "CompVis/stable-diffusion-v1-4": ("sd15", "epsilon"),
    "stabilityai/stable-diffusion-2-1": ("sd2", "v_prediction"),
    "stabilityai/stable-diffusion-2": ("sd2", "v_prediction"),
    "stabilityai/stable-diffusion-2-1-base": ("sd2", "epsilon"),
    "stabilityai/stable-diffusion-2-base": ("sd2", "epsilon"),
    "stabilityai/stable-diffusion-xl-base-1.0": ("sdxl", "epsilon"),
}

Detected = tuple[Family, Prediction | None]


def is_local(source: str) -> bool:
    """A folder on this machine rather than a hub id (the same rule `nightshift doctor` uses)."""
    return source.startswith(("/", ".", "~")) or Path(source).expanduser().is_dir()


def detect_source(source: str, hf_cache: Path | None = None) -> Detected | None:
    """The family of a catalog entry's source (a folder or a hub id); None when unknown."""
    if is_local(source):
        return detect_family(Path(source).expanduser())
    if source in WELL_KNOWN:
        return WELL_KNOWN[source]
    return _detect_cached(source, hf_cache)


def detect_family(folder: Path) -> Detected | None:
    """(family, prediction) from a diffusers folder's own configs; None when they do not say."""
    index = read_json(folder / "model_index.json")
    pipeline = index.get("_class_name") if index else None
    if pipeline == "StableDiffusionXLPipeline":
        return "sdxl", _prediction(folder)
    if pipeline != "StableDiffusionPipeline":
        return None
    encoder = read_json(folder / "text_encoder" / "config.json")
    if encoder is None:
        return None  # SD 1.x and 2.x share the pipeline class: only the encoder tells
    wide = SD2_TEXT_WIDTH in (encoder.get("hidden_size"), encoder.get("projection_dim"))
    return ("sd2" if wide else "sd15"), _prediction(folder)


def _prediction(folder: Path) -> Prediction | None:
    config = read_json(folder / "scheduler" / "scheduler_config.json")
    if config is None:
        return None
    value = config.get("prediction_type", "epsilon")  # diffusers' own default
    return value if value in PREDICTIONS else None


def _detect_cached(repo_id: str, hf_cache: Path | None) -> Detected | None:
    from huggingface_hub import try_to_load_from_cache  # only for hub ids off the table

    try:
        found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=hf_cache)
    except ValueError:  # not a valid repo id
        return None
    return detect_family(Path(found).parent) if isinstance(found, str) else None


def read_json(path: Path) -> dict[str, Any] | None:
    """A small JSON object from a regular file; None if missing, too large or not an object."""
    try:
        raw = read_capped(path, MAX_CONFIG_BYTES)
        data = json.loads(raw)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_capped(path: Path, limit: int) -> bytes:
    """A regular file's bytes, at most `limit` of them (OSError otherwise).

    Opened non-blocking and checked with fstat before reading: a FIFO would wait forever for a
    writer, and /dev/zero would fill memory.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise OSError(f"{path}: larger than {limit} bytes")
    return raw
