"""Timestamps for bench/cpu_queue.py --phases: where a job's time goes between renders.

Each line: wall time, tag, task id. Parent and child write to the same file, opened before
the pool forks, in append mode.
"""

from __future__ import annotations

import os
import time
from typing import Any

import kombu.message
from celery import signals

_log = open(os.environ["NIGHTSHIFT_PHASES_LOG"], "a", buffering=1)  # noqa: SIM115


def _mark(tag: str, task_id: object) -> None:
    _log.write(f"{time.time():.6f} {tag} {task_id}\n")


def _received(request: Any = None, **_: Any) -> None:
    _mark("received", request.id)


def _prerun(task_id: object = None, **_: Any) -> None:
    _mark("prerun", task_id)


def _postrun(task_id: object = None, **_: Any) -> None:
    _mark("postrun", task_id)  # connected first, so it runs before the worker's own hooks


signals.task_received.connect(_received, weak=False)
signals.task_prerun.connect(_prerun, weak=False)
signals.task_postrun.connect(_postrun, weak=False)

_ack = kombu.message.Message.ack


def _timed_ack(self: Any, *args: Any, **kwargs: Any) -> Any:
    _mark("ack", self.headers.get("id"))
    try:
        return _ack(self, *args, **kwargs)
    finally:
        _mark("acked", self.headers.get("id"))


kombu.message.Message.ack = _timed_ack
