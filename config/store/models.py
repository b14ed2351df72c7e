"""Which models each live worker can load and which it holds: workers write, producers read.

A worker publishes its catalog (name -> entry JSON) under `catalog:<host>:<pid>` with a TTL and
refreshes it while it lives (publish_catalog again, well inside the TTL), so a worker that died
drops out by itself. Beside it, `held:<id>` (the models loaded now) and `loads:<id>` (recent
loads, capped) live as long as the catalog does. Producers on other machines learn from
published_models which names they may submit, `nightshift models` shows all of it, and
broker.py counts the `queue@model` lists of every published name. Keys: config/keys.py.

Readers accept clients with or without decode_responses; only workers write (a worker prunes
the index of dead workers when it publishes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import redis

from config import keys as names

LOADS_KEPT = 20
FALLBACK_TTL_S = 3600  # for note_loaded before any catalog was published


@dataclass(frozen=True)
class ModelLoad:
    """One load of a model by a worker: how long it took, and when (Redis server time)."""

    model: str
    load_s: float
    at: float


@dataclass(frozen=True)
class WorkerModels:
    """One live worker: the models it can load (name -> entry), holds, and loaded lately."""

    worker: str
    catalog: dict[str, dict[str, Any]]
    held: list[str] = field(default_factory=list)
    loads: list[ModelLoad] = field(default_factory=list)
    # LoRA name -> what the worker read of it (family, cross_dim, size): worker/render/loras.py
    loras: dict[str, dict[str, Any]] = field(default_factory=dict)


def publish_catalog(
    client: redis.Redis,
    worker_id: str,
    catalog_entries_json: str,
    ttl_s: float,
    loras: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Publish (or refresh) what this worker can load: Catalog.to_json() and its LoRAs, live
    for ttl_s."""
    entries = json.loads(catalog_entries_json)
    if not isinstance(entries, dict) or not entries:
        raise ValueError("catalog_entries_json must be a non-empty JSON object: name -> entry")
    ttl = max(1, math.ceil(ttl_s))
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(names.catalog_key(worker_id))
        pipe.hset(
            names.catalog_key(worker_id),
            mapping={str(name): json.dumps(entry) for name, entry in entries.items()},
        )
        pipe.delete(names.loras_key(worker_id))
        if loras:
            pipe.hset(
                names.loras_key(worker_id),
                mapping={name: json.dumps(info) for name, info in loras.items()},
            )
        for key in _worker_keys(worker_id):
            pipe.expire(key, ttl)
        pipe.sadd(names.CATALOGS_INDEX, worker_id)
        pipe.execute()
    _prune(client)


def withdraw(client: redis.Redis, worker_id: str) -> None:
    """A worker that stops cleanly takes its catalog, held models and loads with it."""
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(*_worker_keys(worker_id))
        pipe.srem(names.CATALOGS_INDEX, worker_id)
        pipe.execute()


def note_loaded(
    client: redis.Redis, worker_id: str, name: str, load_s: float, ttl_s: float | None = None
) -> None:
    """The worker holds `name` now, after a load of load_s seconds. ttl_s None: as long as
    its published catalog lives."""
    seconds, micros = client.time()
    load = {"model": name, "load_s": round(load_s, 3), "at": float(seconds) + micros / 1e6}
    ttl = ttl_s if ttl_s is not None else client.ttl(names.catalog_key(worker_id))
    ttl = max(1, math.ceil(ttl)) if ttl and ttl > 0 else FALLBACK_TTL_S
    with client.pipeline(transaction=True) as pipe:
        pipe.sadd(names.held_key(worker_id), name)
        pipe.lpush(names.loads_key(worker_id), json.dumps(load))
        pipe.ltrim(names.loads_key(worker_id), 0, LOADS_KEPT - 1)
        pipe.expire(names.held_key(worker_id), ttl)
        pipe.expire(names.loads_key(worker_id), ttl)
        pipe.execute()


def note_unloaded(client: redis.Redis, worker_id: str, name: str) -> None:
    """The worker let `name` go (its model cache evicted it)."""
    client.srem(names.held_key(worker_id), name)


def live_workers(client: redis.Redis) -> list[WorkerModels]:
    """Every worker whose published catalog has not expired, by id, in one round trip."""
    ids = sorted(_text(w) for w in client.smembers(names.CATALOGS_INDEX))
    pipe = client.pipeline(transaction=False)
    for worker_id in ids:
        pipe.hgetall(names.catalog_key(worker_id))
        pipe.smembers(names.held_key(worker_id))
        pipe.lrange(names.loads_key(worker_id), 0, LOADS_KEPT - 1)
        pipe.hgetall(names.loras_key(worker_id))
    replies = pipe.execute() if ids else []
    found = []
    for n, worker_id in enumerate(ids):
        catalog, held, loads, loras = replies[4 * n : 4 * n + 4]
        if catalog:
            found.append(_worker(worker_id, catalog, held, loads, loras))
    return found


def published_loras(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """LoRA name -> what its worker read of it, over every live worker (the first by id wins
    a name), with `workers`: the ids of the workers that have it."""
    return merge_loras(live_workers(client))


def merge_loras(workers: list[WorkerModels]) -> dict[str, dict[str, Any]]:
    """published_loras over workers already read (the Client reads them once for both)."""
    union: dict[str, dict[str, Any]] = {}
    for worker in workers:
        for name, info in worker.loras.items():
            union.setdefault(name, dict(info) | {"workers": []})["workers"].append(worker.worker)
    return union


def published_models(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """name -> entry over every live worker's catalog (the first worker by id wins a name)."""
    return merge_catalogs(live_workers(client))


def merge_catalogs(workers: list[WorkerModels]) -> dict[str, dict[str, Any]]:
    union: dict[str, dict[str, Any]] = {}
    for worker in workers:
        for name, entry in worker.catalog.items():
            union.setdefault(name, entry)
    return union


def published_names(client: redis.Redis) -> set[str]:
    """Just the names of published_models, read with HKEYS (what broker.py needs)."""
    ids = [_text(w) for w in client.smembers(names.CATALOGS_INDEX)]
    pipe = client.pipeline(transaction=False)
    for worker_id in ids:
        pipe.hkeys(names.catalog_key(worker_id))
    return {_text(n) for reply in (pipe.execute() if ids else []) for n in reply}


def loaded_models(client: redis.Redis) -> dict[str, WorkerModels]:
    """worker id -> what it holds now and its recent loads (newest first), live workers only."""
    return {w.worker: w for w in live_workers(client)}


def _worker(worker_id: str, catalog: dict, held: set, loads: list, loras: dict) -> WorkerModels:
    entries, lora_info = _json_values(catalog), _json_values(loras)
    recent = []
    for raw in loads:
        try:
            item = json.loads(raw)
            recent.append(ModelLoad(str(item["model"]), float(item["load_s"]), float(item["at"])))
        except (ValueError, KeyError, TypeError):
            continue
    return WorkerModels(worker_id, entries, sorted(_text(h) for h in held), recent, lora_info)


def _json_values(mapping: dict) -> dict[str, dict[str, Any]]:
    values = {}
    for name, raw in mapping.items():
        try:
            value = json.loads(raw)
        except ValueError:
            continue  # not ours (written by hand): the rest still counts
        if isinstance(value, dict):
            values[_text(name)] = value
    return values


def _worker_keys(worker_id: str) -> list[str]:
    return [
        names.catalog_key(worker_id),
        names.held_key(worker_id),
        names.loads_key(worker_id),
        names.loras_key(worker_id),
    ]


def _prune(client: redis.Redis) -> None:
    """Drop ids whose catalog expired (their worker died) from the index."""
    ids = [_text(w) for w in client.smembers(names.CATALOGS_INDEX)]
    pipe = client.pipeline(transaction=False)
    for worker_id in ids:
        pipe.exists(names.catalog_key(worker_id))
    dead = [w for w, alive in zip(ids, pipe.execute() if ids else [], strict=True) if not alive]
    if dead:
        client.srem(names.CATALOGS_INDEX, *dead)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
