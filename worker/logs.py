"""The worker's log: lines a person reads by default, one JSON object a line for log shippers
(NIGHTSHIFT_LOG_FORMAT=json), and no progress bars or loading chatter from the libraries.

`install` runs once, in `nightshift worker` before the Celery app loads. Celery sets logging up
when the worker starts: with worker_hijack_root_logger off (config/celery_conf.py) it adds its
handler to the root logger and its task logger, then sends after_setup_logger and
after_setup_task_logger, where the JSON formatter takes the place of Celery's. The prefork
child inherits those handlers through fork; at worker_process_init (connected here, before
the hooks, so before the model loads) it silences diffusers, transformers and huggingface_hub.
The parent never imports them: it only sets the variables they read when the child loads them.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery._state import get_current_task  # what Celery's own TaskFormatter reads
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init
from celery.utils.log import get_multiprocessing_logger

from config.logformat import JsonLines
from worker.jobs import writebehind
from worker.jobs.messages import job_ids

# Read by the libraries when they load, in the child. One already set wins: a person chasing a
# loading problem runs the worker with TRANSFORMERS_VERBOSITY=info.
LIBRARY_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DIFFUSERS_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "DIFFUSERS_NO_ADVISORY_WARNINGS": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}

# The process that called install: Celery's prefork parent. Any other pid logging through the
# handlers it set up is a child it forked (the one that renders).
_parent_pid: int | None = None


def install(log_format: str) -> None:
    """Connect the logging signals and export LIBRARY_ENV; call before Celery starts."""
    global _parent_pid
    _parent_pid = os.getpid()
    for name, value in LIBRARY_ENV.items():
        os.environ.setdefault(name, value)
    worker_process_init.connect(_quiet_child, weak=False)
    if log_format == "json":
        # A handler on the root logger now, so that what comes before Celery's set-up (its
        # warning about running as root, a hook that fails to install) is JSON too; Celery
        # then keeps it (a root logger with a handler is left as it is) and only sets the level.
        handler = logging.StreamHandler(sys.__stderr__)
        handler.setFormatter(JsonFormatter())
        logging.getLogger().addHandler(handler)
        logging.captureWarnings(True)
        after_setup_logger.connect(_use_json, weak=False)
        after_setup_task_logger.connect(_use_json, weak=False)


def quiet_libraries() -> None:
    """The libraries' own switches, in the process that loads models: bars off, their loggers at
    LIBRARY_ENV's levels. Their variables alone miss a library imported before they were set,
    and diffusers has no variable for its bars."""
    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    disable_progress_bars()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity(_level("DIFFUSERS_VERBOSITY"))
    transformers_logging.set_verbosity(_level("TRANSFORMERS_VERBOSITY"))


def _level(variable: str) -> int:
    return _LEVELS.get(os.environ.get(variable, "error").lower(), logging.ERROR)


def _quiet_child(**_: Any) -> None:
    quiet_libraries()  # LIBRARY_ENV came with the fork: install() exported it in the parent


def _use_json(logger: logging.Logger | None = None, **_: Any) -> None:
    formatter = JsonFormatter()
    loggers = [logger, get_multiprocessing_logger()]
    for each in loggers:
        for handler in each.handlers if each is not None else ():
            handler.setFormatter(formatter)


def role(pid: int) -> str:
    """The process role: "parent" (Celery's consumer, heartbeats, leases) or "child" (the one
    that renders)."""
    return "child" if _parent_pid is not None and pid != _parent_pid else "parent"


def job_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The job a line is about: `extra={"job_id": ...}` when the caller names it, else the job
    whose PNG this thread writes behind its task, else the job(s) of the task this process is
    running (a render task's id is its job's id; a group's is not)."""
    named = getattr(record, "job_id", None) or writebehind.job_being_written()
    if named:
        return {"job": str(named)}
    task = get_current_task()
    request = getattr(task, "request", None)
    ids = job_ids(getattr(request, "args", None)) if request is not None else []
    if len(ids) == 1:
        return {"job": ids[0]}
    return {"jobs": ids} if ids else {}


class JsonFormatter(JsonLines):
    """config/logformat.py's line, with the process role and the job when known."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {
            "process": role(record.process or os.getpid()),
            "pid": record.process,
            **job_fields(record),
        }
