"""Parent and child: the MPS cap before any child forks; the memory guard after each job.

Recycling a worker child cleanly: billiard gives every child a shutdown sentinel when pool
restarts are allowed, and checks it each time the child asks for its next job, i.e. after
the current job's result went back to the parent (which then acks the message, acks_late).
`pool_restart` sets that sentinel. So when the guard says "recycle", the child asks its own
parent for a pool restart and waits for the reply while the job is still running; the job
then returns, is acknowledged, and the child exits instead of taking another. The parent
forks a fresh child, whose worker_process_init loads and warms the model again.
(`worker_max_memory_per_child` uses the same after-the-result exit, but sees only RSS.)
This hook is installed last, so the job's metrics and batch report are written before the
child may retire.
"""

from __future__ import annotations

import logging
from typing import Any

import psutil
from celery import Task
from celery.signals import task_postrun, worker_process_init

from config.settings import Settings
from config.tasks import RENDER_TASK
from worker.host.memory_guard import (
    RECYCLED,
    MemoryGuard,
    MemoryProbe,
    apply_mps_env,
    budgets_mb,
    swap_mb,
)
from worker.jobs import writebehind

logger = logging.getLogger(__name__)
RESTART_REPLY_TIMEOUT_S = 30.0


def install(app: Any, settings: Settings) -> None:
    # In the parent, before any child is forked and before torch is imported anywhere.
    apply_mps_env(settings)
    app.conf.worker_pool_restarts = True  # gives children the sentinel that pool_restart sets
    guard = _Guard(app)
    worker_process_init.connect(guard.note_swap_at_start, weak=False)
    task_postrun.connect(guard.after_task, weak=False)


class _Guard:
    """The child's memory guard, built at its first job (the model is loaded by then)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.guard: MemoryGuard | None = None
        self.swap_at_start_mb = 0.0

    def note_swap_at_start(self, **_: Any) -> None:
        self.swap_at_start_mb = swap_mb()

    def after_task(self, sender: Task | None = None, args: Any = (), **_: Any) -> None:
        if sender is None or sender.name != RENDER_TASK:
            return
        payload = args[0] if args else None
        job_id = payload.get("id") if isinstance(payload, dict) else None
        if self._memory_guard().after_job(job_id) == RECYCLED:
            self._retire_after_this_job(sender.request.hostname)

    def _memory_guard(self) -> MemoryGuard:
        if self.guard is None:
            from worker import runtime

            ctx = runtime.current()
            probe = MemoryProbe.detect(ctx.plan.device)
            probe.swap_at_start_mb = self.swap_at_start_mb
            budgets = budgets_mb(ctx.settings, ctx.plan.device, psutil.virtual_memory().total)
            self.guard = MemoryGuard(ctx.store, ctx.stats_key, probe, budgets, writebehind.later)
        return self.guard

    def _retire_after_this_job(self, hostname: str | None) -> None:
        replies = self.app.control.pool_restart(
            modules=[], destination=[hostname], reply=True, timeout=RESTART_REPLY_TIMEOUT_S
        )
        if replies:
            logger.warning("worker process will be recycled after this job")
        else:
            logger.error("no reply from %s to the recycle request; this process stays", hostname)
