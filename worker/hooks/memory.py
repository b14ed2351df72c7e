"""Celery hooks for living on a Mac: memory guard after each job, power watcher in the parent.

Recycling a worker child cleanly: billiard gives every child a shutdown sentinel when pool
restarts are allowed, and checks it each time the child asks for its next job, i.e. after
the current job's result went back to the parent (which then acks the message, acks_late).
`pool_restart` sets that sentinel. So when the guard says "recycle", the child asks its own
parent for a pool restart and waits for the reply while the job is still running; the job
then returns, is acknowledged, and the child exits instead of taking another. The parent
forks a fresh child, whose worker_process_init loads and warms the model again.
(`worker_max_memory_per_child` uses the same after-the-result exit, but sees only RSS.)
"""

from __future__ import annotations

import logging
from typing import Any

import psutil
import redis
from celery import Task
from celery.signals import task_postrun, worker_process_init, worker_ready, worker_shutdown

from config.keys import RENDER_TASK
from worker import runtime
from worker.app import app, settings
from worker.host.memory_guard import (
    RECYCLED,
    MemoryGuard,
    MemoryProbe,
    apply_mps_env,
    budgets_mb,
    swap_mb,
)
from worker.host.power import PowerWatcher

logger = logging.getLogger(__name__)
RESTART_REPLY_TIMEOUT_S = 30.0

# Set here, in the parent, before any child is forked and before torch is imported anywhere.
apply_mps_env(settings)
app.conf.worker_pool_restarts = True  # gives children the sentinel that pool_restart sets

_guard: MemoryGuard | None = None
_swap_at_start_mb = 0.0
_watcher: PowerWatcher | None = None


@worker_process_init.connect
def _note_swap_at_start(**_: Any) -> None:
    global _swap_at_start_mb
    _swap_at_start_mb = swap_mb()


@task_postrun.connect
def _guard_memory(sender: Task | None = None, args: Any = (), **_: Any) -> None:
    if sender is None or sender.name != RENDER_TASK:
        return
    payload = args[0] if args else None
    job_id = payload.get("id") if isinstance(payload, dict) else None
    if _memory_guard().after_job(job_id) == RECYCLED:
        _retire_after_this_job(sender.request.hostname)


def _memory_guard() -> MemoryGuard:
    global _guard
    if _guard is None:
        ctx = runtime.current()
        probe = MemoryProbe.detect(ctx.plan.device)
        probe.swap_at_start_mb = _swap_at_start_mb
        budgets = budgets_mb(ctx.settings, ctx.plan.device, psutil.virtual_memory().total)
        _guard = MemoryGuard(ctx.store, ctx.stats_key, probe, budgets)
    return _guard


def _retire_after_this_job(hostname: str | None) -> None:
    replies = app.control.pool_restart(
        modules=[], destination=[hostname], reply=True, timeout=RESTART_REPLY_TIMEOUT_S
    )
    if replies:
        logger.warning("worker process will be recycled after this job")
    else:
        logger.error("no reply from %s to the recycle request; this process stays", hostname)


@worker_ready.connect
def _start_power_watcher(sender: Any = None, **_: Any) -> None:
    global _watcher
    if not (settings.keep_awake or settings.pause_on_battery):
        return
    # It only raises worker.host.power.BATTERY_PAUSE: the gate (worker/gate.py) closes the queues.
    _watcher = PowerWatcher(settings, redis.Redis.from_url(settings.redis_url))
    _watcher.start()


@worker_shutdown.connect
def _stop_power_watcher(**_: Any) -> None:
    if _watcher is not None:
        _watcher.stop()
        _watcher.join(15)
