"""Memory guard: after each job, keep the worker (and the Mac) out of swap.

MPS memory grows over many generations (allocator and graph caches), CUDA's caching
allocator holds on to blocks, and a CPU process's RSS creeps up. After every job the guard
measures; over a budget it empties the allocator cache; still over, it asks for the worker
process to be recycled once the job is finished and acknowledged (see worker/mac_hooks.py).
Every verdict is written into the job record and counted in Redis.

Celery-free: readings come from an injectable probe so tests can fake MPS memory.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import redis

from config import keys as names
from config.errors import BrokerUnavailable, JobNotFound
from config.records import JobRecord
from config.settings import Settings
from config.store import JobStore

logger = logging.getLogger(__name__)

MB = 1024**2
OK, EMPTIED, RECYCLED = "ok", "emptied_cache", "recycled"

Reading = dict[str, float]  # what -> megabytes: rss, swap_growth, mps, cuda


def apply_mps_env(settings: Settings, environ: dict[str, str] | None = None) -> None:
    """Export the MPS cap for the worker's children; torch reads it when MPS first allocates."""
    env = os.environ if environ is None else environ
    if settings.mps_high_watermark_ratio is not None:
        env["PYTORCH_MPS_HIGH_WATERMARK_RATIO"] = str(settings.mps_high_watermark_ratio)


def budgets_mb(settings: Settings, device: str, ram_bytes: int) -> Reading:
    """Budgets that apply on this device; a budget of 0 is off (MPS: 0 means half the RAM)."""
    wanted = {
        "rss": settings.rss_budget_mb,
        "swap_growth": settings.swap_growth_budget_mb,
        "cuda": settings.cuda_memory_budget_mb if device == "cuda" else 0,
        "mps": (settings.mps_memory_budget_mb or ram_bytes // 2 // MB) if device == "mps" else 0,
    }
    return {name: float(mb) for name, mb in wanted.items() if mb > 0}


@dataclass
class MemoryProbe:
    """Where readings come from; tests replace `accelerator_mb` to fake an Apple GPU."""

    device: str
    swap_at_start_mb: float
    accelerator_mb: Callable[[], float]
    empty_accelerator_cache: Callable[[], None]

    @classmethod
    def detect(cls, device: str) -> MemoryProbe:
        import torch

        if device == "mps":
            return cls(device, swap_mb(), _mps_mb, torch.mps.empty_cache)
        if device == "cuda":
            return cls(device, swap_mb(), _cuda_mb, torch.cuda.empty_cache)
        return cls(device, swap_mb(), lambda: 0.0, lambda: None)

    def read(self) -> Reading:
        reading = {
            "rss": psutil.Process().memory_info().rss / MB,
            "swap_growth": max(0.0, swap_mb() - self.swap_at_start_mb),
        }
        if self.device in ("mps", "cuda"):
            reading[self.device] = self.accelerator_mb()
        return {name: round(mb, 1) for name, mb in reading.items()}

    def empty_cache(self) -> None:
        gc.collect()  # drop Python references first, so the allocator can let blocks go
        self.empty_accelerator_cache()


def over_budget(reading: Reading, budgets: Reading) -> list[str]:
    return [
        f"{name} {reading[name]:.0f} MB > {limit:.0f} MB"
        for name, limit in budgets.items()
        if reading.get(name, 0.0) > limit
    ]


class MemoryGuard:
    """Run after every job in the worker process; returns the verdict it recorded."""

    def __init__(
        self,
        store: JobStore,
        stats_key: str,
        probe: MemoryProbe,
        budgets: Reading,
        later: Callable[[Callable[[], None]], None] | None = None,
    ):
        self.store, self.stats_key, self.probe, self.budgets = store, stats_key, probe, budgets
        # Where the reading is written down: off the path between jobs when the worker gives
        # a thread for it (worker/jobs/writebehind.py later); the verdict is always now.
        self.later = later or (lambda note: note())

    def after_job(self, job_id: str | None) -> str:
        reading = self.probe.read()
        action = OK
        reasons = over_budget(reading, self.budgets)
        if reasons:
            self.probe.empty_cache()
            reading = self.probe.read()
            action = EMPTIED
            reasons = over_budget(reading, self.budgets)
            if reasons:
                action = RECYCLED
                logger.warning("memory over budget after emptying caches: %s", "; ".join(reasons))
        self.later(lambda: self._note(job_id, action, reading))
        return action

    def _note(self, job_id: str | None, action: str, reading: Reading) -> None:
        try:
            self._record(job_id, action, reading)
        except (redis.RedisError, BrokerUnavailable) as exc:  # bookkeeping lost, action kept
            logger.warning("memory guard: could not record %s: %s", action, exc)

    def _record(self, job_id: str | None, action: str, reading: Reading) -> None:
        if action != OK:
            pipe = self.store.redis.pipeline()
            pipe.hincrby(self.stats_key, f"memory_{action}", 1)
            # Same hash and naming as worker/metrics.py, so `nightshift metrics` can serve it.
            pipe.hincrbyfloat(names.JOB_METRICS, f"memory_events_total:{action}", 1)
            pipe.execute()
        if job_id is None:
            return

        def note(record: JobRecord) -> None:
            record.render.memory_action = action
            record.render.memory_mb = reading

        with contextlib.suppress(JobNotFound):  # a job pushed without a record, then purged
            self.store.update(job_id, note)


def swap_mb() -> float:
    return psutil.swap_memory().used / MB


def _mps_mb() -> float:
    import torch

    return torch.mps.driver_allocated_memory() / MB


def _cuda_mb() -> float:
    import torch

    return torch.cuda.memory_reserved() / MB
