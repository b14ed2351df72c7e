"""The worker's Celery app (`celery -A worker.celery_app`), and its process lifecycle hooks.

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
