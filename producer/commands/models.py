"""`nightshift models`: the catalog, which workers can load and hold each model, what waits;
`nightshift loras`: the LoRAs live workers can load.

The local catalog (config/models.py) plus the models live workers publish
(config/store/models.py), with each model's family, source, size on disk (local folders), its
jobs queued (every `queue@model` list of the configured queues), the workers that list it and
the ones that hold it loaded now, and each worker's recent load times. A model with jobs queued
that no running worker lists says "no worker can load it": those jobs wait until one does.
`models --json` prints a ModelsView, its JSON Schema published by `nightshift schema models`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from config import keys as names
from config.families import Family, Prediction, is_local
from config.models import Catalog, default_catalog
from config.records import PUBLISHED, json_line, schema_of
from config.store import reachable
from config.store.broker import queue_depths, queue_names
from config.store.models import WorkerModels, live_workers, merge_catalogs, published_loras
from producer.client import Client

MAX_FILES_SIZED = 10_000  # a source pointed at a huge folder is not walked to the end
NO_WORKER = "no worker can load it"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models jobs may name, and where they can run")
    p.add_argument(
        "--json",
        action="store_true",
        help="print everything as one JSON object (`nightshift schema models`)",
    )
    p.set_defaults(handler=cmd_models)
    loras = sub.add_parser("loras", help="list the LoRAs live workers can load (by name)")
    loras.add_argument("--json", action="store_true", help="print them as one JSON object")
    loras.set_defaults(handler=cmd_loras)


def cmd_loras(args: argparse.Namespace) -> int:
    """Each LoRA name a job may use, its family (from its weights' shapes) and its workers."""
    client = Client.from_env()
    with reachable():
        loras = published_loras(client.store.redis)
    if args.json:
        print(json.dumps(loras, ensure_ascii=False))
        return 0
    if not loras:
        folders = ", ".join(str(p) for p in client.settings.lora_paths)
        print(f"no live worker lists a LoRA (each reads its NIGHTSHIFT_LORA_DIRS; here: {folders})")
        return 0
    for name, info in sorted(loras.items()):
        family = info.get("family") or f"width {info.get('cross_dim') or '?'}"
        size = f"{int(info.get('size', 0)) / 2**20:.1f} MiB"
        print(f"{name:32} {family:12} {size:>10}  on {', '.join(info['workers'])}")
    return 0


class ModelInfo(BaseModel):
    """One model of the catalog, and where it can run."""

    model_config = PUBLISHED

    name: str
    default: bool = Field(description="the model a job naming none renders with")
    family: Family
    label: str = Field(description="the family as people name it (SD 1.5, SD 2.x, SDXL)")
    prediction: Prediction | None
    source: str = Field(description="a Hugging Face hub id or a folder on the worker's machine")
    local: bool = Field(description="in this machine's catalog, not only a worker's")
    size_bytes: int | None = Field(description="its folder's size; null when not a local folder")
    defaults: dict[str, Any] = Field(description="the job fields it sets when a job leaves them")
    queued: int = Field(description="its jobs waiting, every priority")
    workers: list[str] = Field(description="the live workers that list it")
    loaded_on: list[str] = Field(description="the workers holding it loaded now")
    loadable: bool = Field(description="false: no live worker lists it, so its jobs wait")


class LoadInfo(BaseModel):
    """One load of a model by a worker: seconds it took, and when (Unix seconds)."""

    model_config = PUBLISHED

    model: str
    load_s: float
    at: float


class WorkerInfo(BaseModel):
    """One live worker: what it can load, what it holds, how long its loads took."""

    model_config = PUBLISHED

    worker: str
    models: list[str]
    loaded: list[str]
    recent_loads: list[LoadInfo]


class ModelsView(BaseModel):
    """The models jobs may name, as `nightshift models --json` prints them."""

    model_config = PUBLISHED | ConfigDict(title="Nightshift models")

    default: str
    models: list[ModelInfo]
    workers: list[WorkerInfo]
    queued_without_model: int = Field(
        description="jobs from before models existed: any worker's default renders them"
    )


def models_schema() -> dict[str, Any]:
    """The JSON Schema of `models --json` (`nightshift schema models`)."""
    return schema_of(ModelsView)


def cmd_models(args: argparse.Namespace) -> int:
    view = models_snapshot(Client.from_env())
    print(json_line(view) if args.json else render(view.model_dump(mode="json")))
    return 0


def models_view(client: Client) -> dict[str, Any]:
    """Everything `nightshift models` shows, as plain JSON-ready values (a ModelsView's)."""
    return models_snapshot(client).model_dump(mode="json")


def models_snapshot(client: Client) -> ModelsView:
    """Everything `nightshift models` shows."""
    local = default_catalog(client.settings)
    with reachable():
        workers = live_workers(client.store.redis)
        catalog = Catalog.from_settings(client.settings, merge_catalogs(workers))
        lists = queue_names(client.store.redis, client.settings.queue_list, catalog.names)
        depths = queue_depths(client.store.redis, lists)
    queued: Counter[str | None] = Counter()
    for (queue, _priority), n in depths.items():
        queued[names.split_model_queue(queue)[1]] += n
    return ModelsView(
        default=catalog.default,
        models=[_model(catalog, local, name, workers, queued[name]) for name in catalog.names],
        workers=[_worker(w) for w in workers],
        queued_without_model=queued[None],
    )


def _model(
    catalog: Catalog, local: Catalog, name: str, workers: list[WorkerModels], queued: int
) -> ModelInfo:
    entry = catalog.get(name)
    listing = [w.worker for w in workers if name in w.catalog]
    here = name in local.entries and is_local(entry.source)
    return ModelInfo(
        name=name,
        default=name == catalog.default,
        family=entry.family,
        label=entry.traits.label,
        prediction=entry.prediction,
        source=entry.source,
        local=name in local.entries,
        size_bytes=folder_size(Path(entry.source).expanduser()) if here else None,
        defaults=entry.defaults.model_dump(mode="json", exclude_none=True),
        queued=queued,
        workers=listing,
        loaded_on=[w.worker for w in workers if name in w.held],
        loadable=bool(listing),
    )


def _worker(worker: WorkerModels) -> WorkerInfo:
    return WorkerInfo(
        worker=worker.worker,
        models=sorted(worker.catalog),
        loaded=worker.held,
        recent_loads=[LoadInfo(**asdict(load)) for load in worker.loads],
    )


def folder_size(folder: Path) -> int | None:
    """Bytes of the files under folder (links to files followed, as the HF cache uses them);
    None when it is not a folder or holds more than MAX_FILES_SIZED files."""
    if not folder.is_dir():
        return None
    total, seen = 0, 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            seen += 1
            if seen > MAX_FILES_SIZED:
                return None
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue  # a dangling link
    return total


def render(view: dict[str, Any]) -> str:
    lines = [f"{'MODEL':<16} {'FAMILY':<7} {'QUEUED':>6}  {'WORKERS (* = loaded)':<28} SOURCE"]
    for m in view["models"]:
        name = m["name"] + (" (default)" if m["default"] else "")
        lines.append(
            f"{name:<16} {m['label']:<7} {m['queued']:>6}  {_where(m):<28} {m['source']}"
            + (f"  ({human_size(m['size_bytes'])})" if m["size_bytes"] is not None else "")
        )
    if view["queued_without_model"]:
        n = view["queued_without_model"]
        lines.append(f"{n} job(s) queued before models existed: any worker's default renders them")
    lines += ["", "workers"]
    lines += [f"  {_worker_line(w)}" for w in view["workers"]] or ["  (none running)"]
    return "\n".join(lines)


def _where(model: dict[str, Any]) -> str:
    if not model["loadable"]:
        return NO_WORKER
    loaded = set(model["loaded_on"])
    return ", ".join(w + ("*" if w in loaded else "") for w in model["workers"])


def _worker_line(worker: dict[str, Any]) -> str:
    held = ", ".join(worker["loaded"]) or "nothing"
    loads = ", ".join(f"{x['model']} {x['load_s']:.1f} s" for x in worker["recent_loads"][:5])
    line = f"{worker['worker']}: can load {', '.join(worker['models'])}; holds {held}"
    return line + (f"; recent loads: {loads}" if loads else "")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
