"""The Celery task: decode the job, call the renderer, record the outcome. Nothing else."""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import Reject, SoftTimeLimitExceeded

from config.errors import BrokerUnavailable, NightshiftError
from config.keys import RENDER_GROUP_TASK, RENDER_TASK
from config.records import JobStatus
from worker import runtime
from worker.app import app, settings
from worker.hooks.revoke import end_as_revoked
from worker.jobs.grouping import run_group
from worker.jobs.run import decode_job, fail_job, run_job

logger = logging.getLogger(__name__)


@app.task(name=RENDER_TASK)
def render(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = runtime.current()
    spec = decode_job(payload, ctx)
    try:
        record = run_job(spec, ctx)
    except BrokerUnavailable as exc:
        raise _give_back(spec.id, exc) from exc
    except SoftTimeLimitExceeded:
        fail_job(spec.id, ctx, f"time limit of {settings.job_time_limit_s} s exceeded")
        raise
    except NightshiftError:
        raise  # already recorded by run_job
    except Exception as exc:
        fail_job(spec.id, ctx, f"internal error: {type(exc).__name__}: {exc}")
        raise
    if record.status is JobStatus.CANCELLED:
        end_as_revoked(render)  # Flower shows REVOKED, not SUCCESS
    return {"id": record.id, "status": record.status.value, "outputs": record.outputs}


@app.task(name=RENDER_GROUP_TASK)
def render_group(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx = runtime.current()
    specs = [decode_job(payload, ctx) for payload in payloads]
    try:
        records = run_group(specs, ctx)
    except BrokerUnavailable as exc:
        raise _give_back(",".join(s.id for s in specs), exc) from exc
    except SoftTimeLimitExceeded:
        for spec in specs:
            if not ctx.store.get(spec.id).status.finished:
                fail_job(spec.id, ctx, f"time limit of {settings.job_time_limit_s} s exceeded")
        raise
    return [{"id": r.id, "status": r.status.value, "outputs": r.outputs} for r in records]


def _give_back(what: str, exc: BrokerUnavailable) -> Reject:
    # Redis stayed away longer than worker_redis_patience_s, so the outcome could not be
    # recorded. Acking now (what a plain failure does) would drop the job with its record
    # stuck at "started"; requeued, the next delivery finishes it (finished images are
    # found on disk and not rendered again).
    logger.warning("job %s: Redis unavailable (%s); giving it back to the queue", what, exc)
    return Reject(str(exc), requeue=True)
