"""The per-process worker context: the model is loaded and warmed once, here, at process start."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

from config import keys as names
from config.settings import Settings
from config.store import JobStore
from worker.render import fastpath
from worker.render.device import DevicePlan, HostFacts, plan_device
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer

logger = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    store: JobStore
    renderer: Renderer
    plan: DevicePlan
    hostname: str
    pid: int
    # Group sizes compiled at start-up (fast path); empty: any size up to max_group_size.
    group_sizes: tuple[int, ...] = ()

    @property
    def stats_key(self) -> str:
        return names.worker_key(self.hostname, self.pid)


_context: WorkerContext | None = None


def start(settings: Settings, facts: HostFacts | None = None) -> WorkerContext:
    """Load the pipeline, warm it, and announce readiness; called from worker_process_init."""
    global _context
    plan = plan_device(settings, facts or HostFacts.detect())
    logger.info(
        "loading %s on %s (%s, attention slicing %s)",
        settings.model,
        plan.device,
        plan.dtype,
        "on" if plan.attention_slicing else "off",
    )
    begin = time.perf_counter()
    renderer = Renderer(load_pipeline(settings, plan), plan, settings.model)
    load_s = time.perf_counter() - begin
    fast = fastpath.apply(renderer, settings, plan)  # compiles here, never inside a job
    warm_s = renderer.warm_up() if settings.warmup else 0.0
    ctx = WorkerContext(
        settings,
        JobStore.from_settings(settings, patient=True),
        renderer,
        plan,
        socket.gethostname(),
        os.getpid(),
        group_sizes=fast.group_sizes,
    )
    ctx.store.redis.hset(
        ctx.stats_key, mapping={"fast_path": fast.reason, "compile_s": round(fast.compile_s, 3)}
    )
    _announce(ctx, load_s, warm_s)
    logger.info("ready: loaded in %.1f s, warmed in %.1f s", load_s, warm_s)
    _context = ctx
    return ctx


def current() -> WorkerContext:
    if _context is None:
        raise RuntimeError("worker context used before worker_process_init loaded the model")
    return _context


def _announce(ctx: WorkerContext, load_s: float, warm_s: float) -> None:
    pipe = ctx.store.redis.pipeline()
    pipe.hincrby(ctx.stats_key, "loads", 1)
    pipe.hincrby(ctx.stats_key, "warmups", 1 if ctx.settings.warmup else 0)
    pipe.hset(
        ctx.stats_key,
        mapping={
            "device": ctx.plan.device,
            "dtype": ctx.plan.dtype,
            "attention_slicing": int(ctx.plan.attention_slicing),
            "model": ctx.settings.model,
            "load_s": round(load_s, 3),
            "warmup_s": round(warm_s, 3),
            "ready_at": time.time(),
        },
    )
    pipe.expire(ctx.stats_key, ctx.settings.record_ttl_s)
    pipe.zadd(names.WORKERS_INDEX, {f"{ctx.hostname}:{ctx.pid}": time.time()})
    pipe.execute()
