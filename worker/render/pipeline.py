"""Loading a catalog entry: the one real loading path, for hub ids, folders and tiny models.

Every entry loads with `DiffusionPipeline.from_pretrained(source, ...)`: the class comes
from the folder's model_index.json and must be the entry's family's. Never
`trust_remote_code`, never `custom_pipeline`: a folder or repo cannot run code of its own in
the worker. Local folders are checked when the worker starts (`check_catalog`, JSON only,
no torch), so a wrong path or family is refused then, naming the entry, not at its first job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.errors import ModelUnavailable
from config.families import detect_family, is_local
from config.models import Catalog, ModelEntry
from config.settings import TINY_MODEL, Settings
from worker.render.device import DevicePlan
from worker.render.families import family

logger = logging.getLogger(__name__)

FP16 = "fp16"


@dataclass
class LoadedModel:
    pipe: Any  # on its device, slicing as planned, progress bars off
    source: str  # the hub id or folder it was loaded from
    variant: str | None  # "fp16" when the fp16 weight files were loaded


def tiny_folder(entry: ModelEntry, settings: Settings) -> Path | None:
    """Where the tiny model of this entry lives, when it is the built-on-first-use one."""
    if entry.source == TINY_MODEL:
        return settings.tiny_model_path
    folder = Path(entry.source).expanduser()
    return folder if folder.resolve() == settings.tiny_model_path else None


def resolve_source(entry: ModelEntry, settings: Settings) -> str:
    """The hub id or folder to load; the tiny model is written on first use, offline."""
    folder = tiny_folder(entry, settings)
    if folder is None:
        return entry.source
    from worker.render.tiny import write_tiny_model

    return str(write_tiny_model(folder, family_name=entry.family))


def check_catalog(catalog: Catalog, settings: Settings) -> None:
    """Refuse the worker's start over any local entry that is not what the catalog says."""
    for entry in catalog.entries.values():
        check_entry(entry, settings)


def check_entry(entry: ModelEntry, settings: Settings) -> None:
    """A local folder must be a diffusers pipeline of the entry's family; read, not loaded."""
    family(entry.family)  # a family this worker renders
    if tiny_folder(entry, settings) is not None or not is_local(entry.source):
        return  # built on first use; a hub id: only loading tells
    folder = Path(entry.source).expanduser()
    where = f"model {entry.name!r} ({folder})"
    if not folder.is_dir():
        raise ModelUnavailable(f"{where}: no such folder")
    if not (folder / "model_index.json").is_file():
        raise ModelUnavailable(f"{where}: not a diffusers pipeline folder (no model_index.json)")
    try:
        found = detect_family(folder)
    except (OSError, ValueError) as exc:  # unreadable or broken JSON
        raise ModelUnavailable(f"{where}: cannot read model_index.json: {exc}") from exc
    if found is None:
        raise ModelUnavailable(f"{where}: model_index.json names no pipeline of a known family")
    if found[0] != entry.family:
        said = f"the catalog says {entry.family}"
        raise ModelUnavailable(f"{where}: holds a {found[0]} pipeline, {said}")


def _has_fp16_variant(source: str) -> bool | None:
    """True/False for a local folder; None for a hub id (only trying tells)."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return None
    return any(folder.glob("*/*.fp16.safetensors")) or any(folder.glob("*/*.fp16.bin"))


def load_model(entry: ModelEntry, settings: Settings, plan: DevicePlan) -> LoadedModel:
    """from_pretrained, checked against the family, moved with .to(device), slicing as planned."""
    import torch
    from diffusers import DiffusionPipeline

    check_entry(entry, settings)
    traits = family(entry.family)
    source = resolve_source(entry, settings)
    kwargs: dict[str, Any] = {dtype_kwarg(): getattr(torch, plan.dtype)}
    if traits.safety_checker and not settings.safety_checker:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    variant = FP16 if plan.half and _has_fp16_variant(source) is not False else None
    cannot = f"model {entry.name!r}: cannot load {source!r}"
    try:
        pipe = _from_pretrained(DiffusionPipeline, source, kwargs, variant)
    except (OSError, ValueError) as exc:
        if variant is None:
            raise ModelUnavailable(f"{cannot}: {exc}") from exc
        # The guide asks for the fp16 variant; models without one still load in fp16.
        logger.info("no fp16 variant for %s (%s); loading the default weights", source, exc)
        variant = None
        try:
            pipe = _from_pretrained(DiffusionPipeline, source, kwargs, variant)
        except (OSError, ValueError) as exc2:
            raise ModelUnavailable(f"{cannot}: {exc2}") from exc2
    if type(pipe).__name__ != traits.pipeline_class:
        raise ModelUnavailable(
            f"model {entry.name!r}: {source!r} loads as {type(pipe).__name__}, "
            f"not {traits.pipeline_class} ({entry.family})"
        )
    pipe = pipe.to(plan.device)
    if plan.attention_slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    return LoadedModel(pipe, source, variant)


def load_pipeline(settings: Settings, plan: DevicePlan, entry: ModelEntry | None = None) -> Any:
    """The pipeline of `entry` (default: the catalog's default model), for benchmarks and
    tests that hold one model; the worker loads through worker/render/cache.py."""
    if entry is None:
        catalog = Catalog.from_settings(settings)
        entry = catalog.get(catalog.default)
    return load_model(entry, settings, plan).pipe


def dtype_kwarg() -> str:
    from diffusers.pipelines import pipeline_utils

    # Newer diffusers renamed torch_dtype to dtype (the old name warns); older ones know only
    # torch_dtype and would silently ignore dtype.
    return "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"


def _from_pretrained(cls: Any, source: str, kwargs: dict[str, Any], variant: str | None) -> Any:
    extra = {"variant": variant, "use_safetensors": True} if variant else {}
    return cls.from_pretrained(source, **kwargs, **extra)
