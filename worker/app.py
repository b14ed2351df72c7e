"""The worker's Celery app (`celery -A worker.app`), and its process lifecycle hooks.

Pool: prefork with one child. The parent never imports torch; it keeps heartbeats,
events and remote control answering while the child renders, so Flower sees the worker
online during a long job (the `solo` pool would block all of that). The child loads and
warms the model once, in `worker_process_init`, before it reports up; a child killed by
the hard time limit or by memory recycling is replaced by a fresh one that loads and
warms again. `threads` would keep MPS in one process too, but has no time limits and
cannot recycle a process that leaks.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init

from config.celery_conf import make_celery
from config.settings import Settings

logger = logging.getLogger(__name__)

settings = Settings.from_env()
app = make_celery(settings, include=["worker.tasks"])


@worker_process_init.connect
def _load_model(**_: Any) -> None:
    from worker import runtime

    runtime.start(settings)


# Importing these connects their signal handlers and steps:
# - metrics, revoke: Flower's revoke/terminate become cancels; per-job Prometheus counters;
# - mac_hooks: memory guard after each job, keep-awake, pause on battery, the MPS cap;
# - inbound, recovery: malformed messages dropped; leases and the sweep that requeues a
#   dead worker's job within seconds instead of after the visibility timeout;
# - gate, report: pause/resume and the overnight window; the report after a batch ends.
from worker.hooks import gate

app.steps["consumer"].add(gate.Gate)
