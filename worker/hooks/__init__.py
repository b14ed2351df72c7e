"""The worker's Celery hooks, installed on purpose from one ordered list.

Each module here is one hook with `install(app, settings)`: it receives its context and
connects its signal handlers or bootsteps; none imports the app. Its docstring's first line
says which process it runs in: the worker's main process (parent) or its rendering child.
The order below is the order in which handlers of the same signal run (Celery calls
receivers in the order they were connected, logs one that raises, and calls the rest):
after a job, the metrics and the batch report are written before the memory guard may
retire the child.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from config.settings import Settings

logger = logging.getLogger(__name__)

HOOKS: tuple[str, ...] = (
    "worker.hooks.inbound",  # parent: a malformed message never stops the consumer
    "worker.hooks.model",  # child: load and warm the pipeline before reporting up
    "worker.hooks.leases",  # parent: leases on held jobs, the sweep for a dead worker's jobs
    "worker.hooks.gate",  # parent: pause, the window and battery open and close the queues
    "worker.hooks.power",  # parent: keep the Mac awake, raise the battery flag
    "worker.hooks.revoke",  # parent+child: Flower's revoke and terminate become cancels
    "worker.hooks.afterjob",  # child: after-job handlers after each task; writes flushed
    "worker.hooks.metrics",  # child: per-job counters once a job's outcome is recorded
    "worker.hooks.report",  # child: the morning report when a batch's last job ends
    "worker.hooks.notify",  # parent+child: failed jobs into the outbox; the sender delivers it
    "worker.hooks.memory",  # parent+child: MPS cap before forking; guard and recycle, last
)

_installed: list[str] = []


def install(app: Any, settings: Settings) -> list[str]:
    """Install every hook once, in order; returns the names installed by this call."""
    done = []
    for name in HOOKS:
        if name in _installed:
            continue
        importlib.import_module(name).install(app, settings)
        _installed.append(name)
        done.append(name)
    logger.debug("worker hooks installed: %s", ", ".join(done))
    return done


def installed() -> list[str]:
    return list(_installed)
