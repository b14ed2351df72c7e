"""Child: what runs once jobs' outcomes are recorded: their metrics, their batch's count,
their failure notices.

The hooks register their handlers here (worker/hooks/metrics.py, report.py, notify.py) and
whoever recorded the outcome runs them: the task's postrun for the jobs it finished
(worker/hooks/afterjob.py), the write-behind thread for a job whose file it wrote after its
task had returned (worker/jobs/writebehind.py). Each handler counts a job once however often
it is asked (a redelivered job, a record read before it was final), and one that raises is
logged: bookkeeping never fails a job. The jobs' records are read once, in one round trip,
for all the handlers; a job whose record has expired is left out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from config import keys as names
from config.records import JobRecord
from config.store import reachable

logger = logging.getLogger(__name__)

Payload = dict[str, Any]  # a job payload as its message carried it (JobSpec as JSON)
Handler = Callable[[Any, list[JobRecord]], None]  # (the WorkerContext, the jobs' records)

_handlers: list[Handler] = []
_writing: set[str] = set()  # jobs whose write-behind thread runs the handlers, not postrun
_lock = threading.Lock()


def register(handler: Handler) -> None:
    """Add a handler; they run in the order registered (the hooks' order)."""
    _handlers.append(handler)


def run(ctx: Any, payloads: list[Payload]) -> None:
    try:
        found = read_records(ctx.store.redis, [str(p.get("id")) for p in payloads])
    except Exception:
        logger.exception("after-job handlers skipped: the jobs' records could not be read")
        return
    for handler in _handlers:
        try:
            handler(ctx, found)
        except Exception:
            logger.exception("after-job handler %s failed", getattr(handler, "__name__", handler))


def read_records(client: Any, ids: list[str]) -> list[JobRecord]:
    """The jobs' records, in order, with MGET (one round trip); expired ones left out."""
    if not ids:
        return []
    with reachable():
        raws = client.mget([names.job_key(i) for i in ids])
    return [JobRecord.from_json(raw) for raw in raws if raw is not None]


def handed_over(job_id: str) -> None:
    """The job's outcome will be recorded by the write-behind thread, which runs its handlers."""
    with _lock:
        _writing.add(job_id)


def after_task(ctx: Any, payloads: list[Payload]) -> None:
    """A task's postrun: the handlers for its jobs, except those handed to the writer."""
    with _lock:
        mine = [p for p in payloads if p.get("id") not in _writing]
        _writing.difference_update(str(p.get("id")) for p in payloads)
    if mine:
        run(ctx, mine)
