"""The worker's Celery app (`celery -A worker.app`): settings and the bare app, nothing else.

Importing this module installs no hook: Flower (`celery -A worker.app flower`) and the
producer's tools import the same app for its configuration only. The worker's hooks are
installed from one ordered list (worker/hooks/__init__.py) by `celeryd_init`, which only the
`celery worker` command sends, in the worker's main process before its pool forks.

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

from celery.signals import celeryd_init

from config.celery_conf import make_celery
from config.settings import Settings

logger = logging.getLogger(__name__)
settings = Settings.from_env()
app = make_celery(settings, include=["worker.tasks"])


@celeryd_init.connect
def _install_hooks(**_: Any) -> None:
    from worker import hooks

    try:
        hooks.install(app, settings)
    except Exception as exc:
        # Celery logs and swallows a signal handler's exception: a worker missing its leases
        # or its gate must not start at all. SystemExit is not swallowed.
        logger.critical("cannot install the worker's hooks: %s: %s", type(exc).__name__, exc)
        raise SystemExit(1) from exc
