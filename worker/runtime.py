"""The per-process worker context: the catalog and the model cache, made at process start.

The default model is loaded and warmed here, before the process reports ready, so the first
job does not pay for it; other models load on the first job that names them (the model cache,
worker/render/cache.py). The worker publishes its catalog, and after each load and eviction
what it holds, for producers and the queue choice (config/store/models.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from config import keys as names
from config.errors import BrokerUnavailable
from config.models import Catalog
from config.settings import Settings
from config.store import JobStore, control
from config.store import models as published
from worker.jobs.inputs import InputFetcher
from worker.render import fastpath
from worker.render.cache import CacheBudget, ModelCache, ModelEvent, Models, PinnedModel
from worker.render.device import DevicePlan, HostFacts, plan_device
from worker.render.pipeline import check_catalog
from worker.render.renderer import Renderer

logger = logging.getLogger(__name__)

# How long a published catalog outlives its worker (refreshed every third of it).
CATALOG_TTL_S = 60.0


@dataclass
class WorkerContext:
    settings: Settings
    store: JobStore
    models: Models  # warmed renderers by catalog name (a ModelCache in a worker)
    plan: DevicePlan
    hostname: str
    pid: int
    # Group sizes compiled at start-up (fast path); empty: any size up to max_group_size.
    group_sizes: tuple[int, ...] = ()
    _inputs: InputFetcher | None = None

    def __post_init__(self) -> None:
        if not hasattr(self.models, "get"):
            # One ready renderer (a benchmark's, a test's stand-in) renders every model.
            self.models = PinnedModel(self.models, Catalog.from_settings(self.settings))

    @property
    def catalog(self) -> Catalog:
        """The models a job may name here, and the default one."""
        return self.models.catalog

    @property
    def inputs(self) -> InputFetcher:
        """Init images and masks from the input store (its binary client made on first use)."""
        if self._inputs is None:
            self._inputs = InputFetcher(self.settings)
        return self._inputs

    @property
    def stats_key(self) -> str:
        return names.worker_key(self.hostname, self.pid)

    @property
    def worker_id(self) -> str:
        return f"{self.hostname}:{self.pid}"

    @property
    def renderer(self) -> Renderer:
        """The default model's renderer (loaded again if it was evicted)."""
        return self.models.get(self.catalog.default)[0]


_context: WorkerContext | None = None


def should_preload(settings: Settings, client: Any) -> bool:
    """Whether process start loads the default model. The hook point for the released-memory
    control flag (`pause --release-memory`): while it is set, a new process loads nothing
    until a job needs a model."""
    try:
        return not control.release_requested(client)
    except redis.RedisError:
        return True  # Redis away: behave as before there were releases


def start(settings: Settings, facts: HostFacts | None = None) -> WorkerContext:
    """Build the context, load and warm the default model, announce readiness; called from
    worker_process_init."""
    global _context
    boot_s = _since_worker_start()
    facts = facts or HostFacts.detect()
    plan = plan_device(settings, facts)
    catalog = Catalog.from_settings(settings)
    check_catalog(catalog, settings)
    store = JobStore.from_settings(settings, patient=True)
    hostname, pid = socket.gethostname(), os.getpid()
    budget = CacheBudget.for_device(settings, plan.device, facts.ram_bytes)
    publish = _publisher(store, f"{hostname}:{pid}")
    cache = ModelCache(catalog, settings, plan, budget, on_change=publish)
    logger.info(
        "models %s (default %s) on %s (%s, attention slicing %s), cache %s",
        ", ".join(catalog.names),
        catalog.default,
        plan.device,
        plan.dtype,
        "on" if plan.attention_slicing else "off",
        budget,
    )
    enabled, reason = fastpath.wanted(settings, plan)
    sizes = settings.group_sizes if enabled else ()
    ctx = WorkerContext(settings, store, cache, plan, hostname, pid, sizes)
    CatalogPublisher(ctx).start()
    load_s = warm_s = compile_s = 0.0
    cache_state = "off"  # the compile cache: warm, cold, or off (nothing compiled)
    rounds = ""  # each group size's warm-up rounds, seconds: where a start's time went
    preload = should_preload(settings, store.redis)
    if preload:
        cache.get(catalog.default)
        held = cache.stats(catalog.default)
        assert held is not None
        load_s, warm_s = held.load_s, held.ready_s - held.load_s
        reason, compile_s = held.fast_path.reason, held.fast_path.compile_s
        cache_state = held.fast_path.compile_cache
        rounds = " ".join(
            f"{size}:" + ",".join(f"{r:.2f}" for r in times)
            for size, times in held.fast_path.warm_rounds_s.items()
        )
    store.redis.hset(
        ctx.stats_key,
        mapping={
            "fast_path": reason,
            "compile_s": round(compile_s, 3),
            "compile_cache": cache_state,
            "warm_rounds_s": rounds,
            # From the worker's start (its main process) to this process building its
            # context: Python, imports, Celery's start, the fork.
            "boot_s": round(boot_s, 3),
        },
    )
    _announce(ctx, load_s, warm_s, loaded=preload)
    logger.info("ready: loaded in %.1f s, warmed in %.1f s", load_s, warm_s)
    _context = ctx
    return ctx


def _since_worker_start() -> float:
    """Seconds since the worker's main process started (this child's parent, under Celery's
    prefork pool; this process itself otherwise)."""
    import psutil

    me = psutil.Process()
    parent = me.parent()
    started = parent.create_time() if parent is not None and parent.pid != 1 else me.create_time()
    return max(0.0, time.time() - started)


def current() -> WorkerContext:
    if _context is None:
        raise RuntimeError("worker context used before worker_process_init loaded the model")
    return _context


def _publisher(store: JobStore, worker_id: str) -> Callable[[ModelEvent], None]:
    def publish(event: ModelEvent) -> None:
        if event.kind == "loaded" and event.load_s is not None:
            published.note_loaded(store.redis, worker_id, event.name, event.load_s)
        else:
            published.note_unloaded(store.redis, worker_id, event.name)

    return publish


class CatalogPublisher:
    """Publishes this process's catalog, and again every third of its TTL while the process
    lives: a worker that dies drops out of what producers see by itself (config/store/models.py).
    A daemon thread, so it never holds the process up at exit."""

    def __init__(self, ctx: WorkerContext, ttl_s: float = CATALOG_TTL_S) -> None:
        self.ctx, self.ttl_s = ctx, ttl_s
        self.entries = ctx.catalog.to_json()
        self._stop = threading.Event()

    def publish(self) -> None:
        ctx = self.ctx
        library = ctx.models.loras
        loras = library.published() if library is not None else None  # rescanned: new files
        published.publish_catalog(ctx.store.redis, ctx.worker_id, self.entries, self.ttl_s, loras)

    def start(self) -> None:
        self.publish()
        threading.Thread(target=self._run, name="catalog-publisher", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.publish()
            except (redis.RedisError, BrokerUnavailable) as exc:  # next round tries again
                logger.warning("could not refresh the published model catalog: %s", exc)


def _announce(ctx: WorkerContext, load_s: float, warm_s: float, *, loaded: bool) -> None:
    pipe = ctx.store.redis.pipeline()
    pipe.hincrby(ctx.stats_key, "loads", 1 if loaded else 0)
    pipe.hincrby(ctx.stats_key, "warmups", 1 if loaded and ctx.settings.warmup else 0)
    pipe.hset(
        ctx.stats_key,
        mapping={
            "device": ctx.plan.device,
            "dtype": ctx.plan.dtype,
            "attention_slicing": int(ctx.plan.attention_slicing),
            "model": ctx.catalog.default,
            "load_s": round(load_s, 3),
            "warmup_s": round(warm_s, 3),
            "ready_at": time.time(),
        },
    )
    pipe.expire(ctx.stats_key, ctx.settings.record_ttl_s)
    pipe.zadd(names.WORKERS_INDEX, {ctx.worker_id: time.time()})
    pipe.execute()
